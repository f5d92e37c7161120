"""Texture baking in UV space, checked against barycentric interpolation and projection in numpy."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.morphable.model import UVMap
from occface_jax.morphable.synthetic import triangle_atlas
from occface_jax.render import camera as cam
from occface_jax.texture import atlas as texture

SIZE = (192, 256)  # (height, width): non-square, to catch a swapped axis


@pytest.fixture(scope="module")
def uv_model(toy_model):
    coords, tris = triangle_atlas(toy_model.n_triangles)
    return toy_model.replace(uv=UVMap(coords, tris, SIZE))


def texel_barycentrics(uv: UVMap, rows: np.ndarray, cols: np.ndarray):
    """Brute force in numpy: the UV triangle holding each texel centre and its barycentrics."""
    height, width = uv.texture_size
    p = np.stack([(cols + 0.5) / width, 1 - (rows + 0.5) / height], axis=1)  # (T, 2)
    a, b, c = (uv.coords[uv.triangles[:, k]].astype(np.float64) for k in range(3))  # (F, 2)
    v0, v1, v2 = b - a, c - a, p[:, None, :] - a[None]
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    l1 = (v2[..., 0] * v1[:, 1] - v1[:, 0] * v2[..., 1]) / den
    l2 = (v0[:, 0] * v2[..., 1] - v2[..., 0] * v0[:, 1]) / den
    bary = np.stack([1 - l1 - l2, l1, l2], axis=-1)  # (T, F, 3)
    inside = np.all(bary > 1e-3, axis=-1)  # clear of the edges
    tri = np.argmax(inside, axis=1)
    return tri, bary[np.arange(len(tri)), tri], inside.any(axis=1)


def test_baked_texels_are_barycentric_interpolations(uv_model):
    rng = np.random.default_rng(0)
    colors = rng.uniform(size=(uv_model.n_vertices, 3)).astype(np.float32)
    layout = texture.uv_layout(uv_model.uv, dilation=2)
    tex = np.asarray(texture.bake_vertex_colors(layout, jnp.asarray(uv_model.triangles), colors))
    assert tex.shape == SIZE + (3,) and np.isfinite(tex).all()
    rows, cols = rng.integers(0, SIZE[0], 4000), rng.integers(0, SIZE[1], 4000)
    tri, bary, found = texel_barycentrics(uv_model.uv, rows, cols)
    assert found.sum() > 500
    expected = np.einsum("tk,tkc->tc", bary[found], colors[uv_model.triangles[tri[found]]])
    np.testing.assert_allclose(tex[rows[found], cols[found]], expected, atol=1e-5)
    ids = np.asarray(layout.raster.triangle_id)[rows[found], cols[found]]
    np.testing.assert_array_equal(ids, tri[found])


def test_dilation_takes_a_nearest_covered_texel_and_fill_the_mean():
    rng = np.random.default_rng(2)
    cov = np.zeros((40, 50), bool)
    cov[5:9, 4:30] = True  # a strip and a blob with a gap between them
    cov[20:30, 12:18] = cov[14:17, 35:37] = True
    tex = rng.uniform(size=cov.shape + (3,)).astype(np.float32) * cov[..., None]
    sources = np.asarray(texture.dilation_sources(jnp.asarray(cov, jnp.float32), 3))
    grown, grown_cov = (np.asarray(x) for x in texture.dilate(jnp.asarray(tex), sources))
    # Independent: Chebyshev distance of every texel to every covered texel.
    ys, xs = np.nonzero(cov)
    rr, cc = np.mgrid[0:40, 0:50]
    dist = np.maximum(abs(rr[..., None] - ys), abs(cc[..., None] - xs))  # (H, W, K)
    nearest = dist.min(axis=-1)
    np.testing.assert_array_equal(grown_cov > 0, nearest <= 3)
    np.testing.assert_array_equal(grown[cov], tex[cov])
    src = sources[grown_cov > 0]
    src_r, src_c = src // 50, src % 50
    assert cov[src_r, src_c].all()
    np.testing.assert_array_equal(
        np.maximum(abs(rr[grown_cov > 0] - src_r), abs(cc[grown_cov > 0] - src_c)),
        nearest[grown_cov > 0],
    )
    np.testing.assert_array_equal(grown[grown_cov > 0], tex[src_r, src_c])
    filled = np.asarray(texture.fill_empty(jnp.asarray(grown), jnp.asarray(grown_cov)))
    np.testing.assert_allclose(filled[0, 49], grown[grown_cov > 0].mean(axis=0), atol=1e-6)


def _rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    cx, cy, cz, sx, sy, sz = (
        np.cos([pitch, yaw, roll]).tolist() + np.sin([pitch, yaw, roll]).tolist()
    )
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_photo_texels_sample_the_projected_surface_point(uv_model):
    """A linear ramp photo: bilinear sampling is exact, so each fully visible texel must hold the
    ramp at its surface point projected by the pose, the Deng camera and the crop -> photo map."""
    rng = np.random.default_rng(1)
    n = uv_model.n_vertices
    vertices = np.asarray(uv_model.mean_shape, np.float32)
    angles, translation = np.array([0.1, -0.2, 0.05], np.float32), np.zeros(3, np.float32)
    camera = cam.deng_camera(224)
    crop_to_photo = np.array([[2.0, 0.1, 30.0], [-0.05, 2.0, 20.0]], np.float32)
    ys, xs = np.mgrid[0:600, 0:700].astype(np.float32) + 0.5
    photo = np.stack([xs / 700, ys / 600, 0.5 + 0 * xs], axis=-1)
    colors = rng.uniform(size=(n, 3)).astype(np.float32)
    layout = texture.uv_layout(uv_model.uv)
    args = (layout, jnp.asarray(uv_model.triangles), jnp.asarray(uv_model.vertex_triangles))
    pose = (jnp.asarray(angles), jnp.asarray(translation), camera, jnp.asarray(crop_to_photo))
    tex = np.asarray(
        texture.bake_photo_texture(*args, vertices, colors, np.ones(n, bool), *pose, photo)
    )
    rows, cols = rng.integers(0, SIZE[0], 3000), rng.integers(0, SIZE[1], 3000)
    tri, bary, found = texel_barycentrics(uv_model.uv, rows, cols)
    point = np.einsum("tk,tkc->tc", bary[found], vertices[uv_model.triangles[tri[found]]])
    world = point / 100 @ _rotation(*angles).T + translation
    w = camera.distance - world[:, 2]
    crop = np.stack(
        [112 + 1015 * world[:, 0] / w, 112 - 1015 * world[:, 1] / w], axis=1
    )  # Deng: focal 1015, centre 112 px
    px = crop @ crop_to_photo[:, :2].T + crop_to_photo[:, 2]
    expected = np.stack([px[:, 0] / 700, px[:, 1] / 600, np.full(len(px), 0.5)], axis=1)
    np.testing.assert_allclose(tex[rows[found], cols[found]], expected, atol=2e-4)
    # An occlusion map over the crop's left half: texels seen there keep the vertex colours.
    occlusion = np.zeros((224, 224), np.float32)
    occlusion[:, :112] = 1
    cut = np.asarray(
        texture.bake_photo_texture(
            *args, vertices, colors, np.ones(n, bool), *pose, photo, jnp.asarray(occlusion)
        )
    )
    plain = np.asarray(texture.bake_vertex_colors(layout, jnp.asarray(uv_model.triangles), colors))
    left, right = crop[:, 0] < 111, crop[:, 0] > 113
    picked = (rows[found], cols[found])
    np.testing.assert_allclose(cut[picked][left], plain[picked][left], atol=1e-5)
    np.testing.assert_allclose(cut[picked][right], expected[right], atol=2e-4)
    assert left.sum() > 100 and right.sum() > 100
    # Nothing visible: the per-vertex colours alone.
    hidden = texture.bake_photo_texture(*args, vertices, colors, np.zeros(n, bool), *pose, photo)
    np.testing.assert_allclose(np.asarray(hidden), plain, atol=1e-6)


def test_bake_fit_texture_needs_uvs(toy_model):
    with pytest.raises(ValueError, match="no texture coordinates"):
        texture.bake_fit_texture(toy_model, fit=None)


def test_sample_nearest_reads_the_pixel_holding_each_point_and_clamps_off_the_image():
    image = np.arange(4 * 5 * 2, dtype=np.float32).reshape(4, 5, 2)  # (H, W, C)
    # (x, y): inside pixel (col 2, row 1); exactly on the corner of pixel (col 3, row 2); left of
    # the image on row 3; below and right of it.
    points = np.array([[2.7, 1.2], [3.0, 2.0], [-6.0, 3.5], [40.0, 9.0]])
    got = np.asarray(texture.sample_nearest(image, points))
    np.testing.assert_array_equal(got, image[[1, 2, 3, 3], [2, 3, 0, 4]])


def test_bilinear_sampling_matches_opencv_and_ignores_the_padding_of_a_padded_photo():
    """``sample_bilinear`` against OpenCV's remap (centres at integers there, replicated
    borders), and on the photo padded to the sampling bucket (its true size given, traced under
    jit) exactly as on the photo itself: the same values and the same inside flags."""
    import cv2
    import jax

    rng = np.random.default_rng(0)
    photo = rng.random((37, 53, 3), dtype=np.float32)  # (H, W, C), odd sizes off the bucket
    points = rng.uniform(-4.0, 60.0, (200, 2)).astype(np.float32)  # some off the photo
    values, inside = (np.asarray(a) for a in texture.sample_bilinear(jnp.asarray(photo), points))
    map_x, map_y = points[:, 0:1] - 0.5, points[:, 1:2] - 0.5
    want = cv2.remap(photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(values, want[:, 0], atol=2e-3)  # OpenCV's 5-bit weights
    expected_inside = (points >= 0).all(1) & (points[:, 0] <= 53) & (points[:, 1] <= 37)
    np.testing.assert_array_equal(inside, expected_inside)
    padded, size = texture.padded_photo(photo, bucket=32)
    assert padded.shape == (64, 64, 3) and tuple(size) == (37, 53)
    got_values, got_inside = jax.jit(texture.sample_bilinear)(padded, points, size)
    np.testing.assert_allclose(np.asarray(got_values), values, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(got_inside), inside)
