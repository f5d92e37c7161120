"""``io.report``: mesh views of a coloured mesh, the labelled panel, and the report picture's
panels (order, sizes, labels, what each shows)."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import jax.numpy as jnp
import numpy as np
from PIL import Image

from occface_jax.io import report

REPORT_LABELS = ("photo", "occlusion (red)", "de-occluded", "overlay", "mesh", "mesh, turned")
LABEL_ROWS = 23  # the white band (rows 0-22) each tile's label is written in


def _views(model, colors, size=64):
    return np.asarray(
        report.mesh_views(
            jnp.asarray(model.mean_shape),
            jnp.asarray(colors, jnp.float32),
            jnp.asarray(model.triangles),
            jnp.asarray(model.vertex_triangles),
            jnp.asarray(report.VIEW_YAWS),
            size=size,
        )
    )


def test_mesh_views_render_the_mesh_turned(toy_model):
    # Red on the subject's left half (x > 0), blue on the right: turning changes the red share.
    left = np.asarray(toy_model.mean_shape)[:, 0] > 0
    colors = np.where(left[:, None], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8])
    views = _views(toy_model, colors)
    assert views.shape == (2, 64, 64, 3) and np.isfinite(views).all()
    covered = np.any(views < 0.99, axis=-1)
    for view in covered:
        assert view[[0, 0, -1, -1], [0, -1, 0, -1]].sum() == 0  # white corners: background
        assert 0.4 < view.mean() < 0.95  # the mesh fills most of the view, not all of it
    red = [(v[..., 0] > v[..., 2]).sum() / c.sum() for v, c in zip(views, covered, strict=True)]
    # Frontal: about half red (the sphere's x = 0 meridian is blue); turned: far from that.
    assert 0.3 < red[0] < 0.7 and abs(red[1] - red[0]) > 0.2
    # Head-on light: the centre faces the camera (colour x 1), the outline is darker.
    front = views[0, 30:34, 30:34].reshape(-1, 3)
    assert np.all(front.max(axis=1) > 0.7)


def _label_extent(tile: np.ndarray) -> tuple[int, int]:
    """First and last column with dark (text) pixels in a tile's label band."""
    dark = np.flatnonzero((tile[:LABEL_ROWS].min(axis=-1) < 128).any(axis=0))
    return int(dark[0]), int(dark[-1])


def _check_label(tile: np.ndarray, text: str) -> None:
    (width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    first, last = _label_extent(tile)
    # Anti-aliased glyph edges are lighter than the threshold: a few pixels narrower than cv2 says.
    assert abs(first - 6) <= 2 and -8 <= last - first + 1 - width <= 2, (text, first, last, width)


def test_panel_sizes_gaps_and_labels():
    green = np.zeros((100, 50, 3), np.float32)
    green[..., 1] = 1
    blue = np.zeros((256, 256, 3), np.float32)
    blue[..., 2] = 1
    out = report.panel([("a", green), ("wider label", blue)], height=128)
    assert out.dtype == np.uint8 and out.shape == (128, 64 + 4 + 128, 3)
    assert np.all(out[:, 64:68] == 255)  # the gap
    assert np.all(out[LABEL_ROWS:, :64] == [0, 255, 0])
    assert np.all(out[LABEL_ROWS:, 68:] == [0, 0, 255])
    _check_label(out[:, :64], "a")
    _check_label(out[:, 68:], "wider label")


def test_report_picture_has_its_panels(toy_model, tmp_path):
    """A stand-in reconstruction: a grey 300 px photo whose aligned crop is the square 20..244."""
    photo = np.full((300, 300, 3), 0.5, np.float32)
    photo[200:210, 50:60] = [0.0, 1.0, 0.0]  # inside the crop
    photo[:, 250:] = [0.0, 0.0, 1.0]  # outside the crop: must not show
    occlusion = np.zeros((300, 300), np.float32)
    occlusion[100:150, 100:150] = 1
    rec = SimpleNamespace(
        photo=photo,
        occlusion_original=occlusion,
        aligned=SimpleNamespace(to_original=lambda points: np.asarray(points) + 20.0),
        fit=SimpleNamespace(
            vertices=toy_model.mean_shape,
            vertex_colors=np.full((toy_model.n_vertices, 3), 0.6, np.float32),
        ),
    )
    path = report.save_report(tmp_path / "report.png", rec, photo, photo, toy_model)
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert picture.shape == (256, 6 * 256 + 5 * 4, 3)
    tiles = [picture[:, k * 260 : k * 260 + 256] for k in range(6)]
    assert all(np.all(picture[:, k * 260 - 4 : k * 260] == 255) for k in range(1, 6))
    for tile, label in zip(tiles, REPORT_LABELS, strict=True):
        _check_label(tile, label)
    scale = 256 / 224  # crop pixels -> tile pixels
    photo_tile, occlusion_tile = tiles[0], tiles[1]
    marker = photo_tile[round(185 * scale), round(35 * scale)]
    assert marker[1] > 200 and marker[0] < 50  # the green marker, where the crop puts it
    assert not np.any((photo_tile[LABEL_ROWS:, :, 2] > 200) & (photo_tile[LABEL_ROWS:, :, 0] < 50))
    tinted = occlusion_tile[round(105 * scale), round(105 * scale)].astype(int)
    assert tinted[0] > tinted[1] + 100  # red where occluded ...
    np.testing.assert_allclose(occlusion_tile[round(40 * scale), round(200 * scale)], 128, atol=2)
    for mesh_tile in tiles[4:]:
        assert np.mean(mesh_tile[LABEL_ROWS:].min(axis=-1) < 250) > 0.2  # the mesh is drawn
