"""NoW known answers on a folder in the now_evaluation layout: a predicted mesh equal to the scan's
surface moved by a known similarity, 7 landmarks a little off, scan noise N(0, sigma^2) along the
normals: pooled median ~ 0.674 sigma, mean ~ sigma sqrt(2 / pi), per challenge; the metrical variant
(no scale) cannot undo a scale, the scaled one can."""

from __future__ import annotations

import numpy as np
import pytest
from face_surface import grid_mesh, inverse_apply, noisy_scan, similarity

from occface_jax.errors import OccfaceError
from occface_jax.eval.protocols import PROTOCOLS, now
from occface_jax.eval.protocols.runner import Predicted, evaluate
from occface_jax.io import images as imageio
from occface_jax.io.mesh import write_obj

SIGMA = 0.4
SUBJECT = "FaMoS_180424_03335_TA"
LINES = [f"{SUBJECT}/multiview_neutral/IMG_01.jpg", f"{SUBJECT}/multiview_occlusions/IMG_02.jpg"]
# Scan points standing in for the eye corners, nose tip and mouth corners (x, y in mm).
LANDMARK_XY = np.array([[-45, 35], [-15, 35], [15, 35], [45, 35], [0, -5], [-25, -40], [25, -40.0]])


def _write_now(root, scan_vertices, scan_triangles, scan_landmarks):
    root.mkdir(parents=True)
    (root / "imagepathsvalidation.txt").write_text("\n".join(LINES) + "\n")
    for line in LINES:
        imageio.save_image(
            root / "final_release_version" / "iphone_pictures" / line, np.zeros((32, 32, 3))
        )
    write_obj(root / "scans" / SUBJECT / "natural_head.obj", scan_vertices, scan_triangles)
    points = "\n".join(
        f'<point x="{x}" y="{y}" z="{z}" active="1" name="{i}"/>'
        for i, (x, y, z) in enumerate(scan_landmarks)
    )
    pp = root / "scans_lmks_onlypp" / SUBJECT / "natural_head_picked_points.pp"
    pp.parent.mkdir(parents=True)
    pp.write_text(f"<!DOCTYPE PickedPoints>\n<PickedPoints>\n{points}\n</PickedPoints>\n")


@pytest.fixture()
def dataset(tmp_path):
    from face_surface import height

    vertices, triangles = noisy_scan(61, 80.0, SIGMA, seed=3)
    landmarks = np.column_stack([LANDMARK_XY, height(LANDMARK_XY[:, 0], LANDMARK_XY[:, 1])])
    _write_now(tmp_path / "NoW", vertices, triangles, landmarks)
    return tmp_path / "NoW", landmarks


def _predictor(sim, scan_landmarks):
    vertices, triangles, _ = grid_mesh(141, 110.0)
    lm68 = np.zeros((68, 3))
    lm68[list(now.LANDMARKS7)] = inverse_apply(
        sim, scan_landmarks + np.random.default_rng(0).normal(0, 1.5, (7, 3))
    )

    def predict(image, box):
        return Predicted(inverse_apply(sim, vertices), triangles, lm68, np.zeros((68, 2)))

    return predict


def test_now_pooled_errors_are_the_noise(dataset, tmp_path):
    root, landmarks = dataset
    sim = similarity(0.9, (5.0, 10.0, -4.0), (2.0, -3.0, 20.0))
    results = evaluate(
        PROTOCOLS["now"], root, tmp_path / "out", _predictor(sim, landmarks), progress=False
    )
    assert results["failed"] == 0
    subsets = results["subsets"]
    assert set(subsets) == {"multiview_neutral", "multiview_occlusions", "all"}
    for subset in subsets.values():
        assert subset["median"] == pytest.approx(0.674 * SIGMA, rel=0.1)
        assert subset["mean"] == pytest.approx(SIGMA * np.sqrt(2 / np.pi), rel=0.1)
        assert subset["std"] == pytest.approx(SIGMA * np.sqrt(1 - 2 / np.pi), rel=0.15)
    assert subsets["all"]["n"] == 2
    distances = np.load(tmp_path / "out" / "samples" / f"{LINES[0].replace('/', '_')}.npy")
    assert len(distances) == 61 * 61  # every scan vertex counts
    # the heat map of each image: the aligned prediction drawn, coloured by its distances
    for line in LINES:
        picture = imageio.load_image(
            tmp_path / "out" / "heatmaps" / f"{line.replace('/', '_')}.png"
        )
        assert (picture.pixels < 0.9).any(axis=-1).mean() > 0.1  # a mesh covers the views


def test_metrical_now_keeps_the_predictions_scale(dataset, tmp_path):
    root, landmarks = dataset
    rigid = similarity(1.0, (5.0, 10.0, -4.0), (2.0, -3.0, 20.0))
    scaled = similarity(0.9, (5.0, 10.0, -4.0), (2.0, -3.0, 20.0))
    means = {
        name: evaluate(
            PROTOCOLS["now_metrical"],
            root,
            tmp_path / name,
            _predictor(sim, landmarks),
            progress=False,
        )["subsets"]["all"]["mean"]
        for name, sim in (("a", rigid), ("b", scaled))
    }
    assert means["a"] == pytest.approx(SIGMA * np.sqrt(2 / np.pi), rel=0.1)
    assert means["b"] > 2.5 * SIGMA * np.sqrt(2 / np.pi)
    assert "rigid, metrical" in (tmp_path / "b" / "results.md").read_text()


def test_a_missing_scan_fails_its_samples_and_a_missing_list_names_the_layout(dataset, tmp_path):
    root, landmarks = dataset
    (root / "scans" / SUBJECT / "natural_head.obj").unlink()
    results = evaluate(
        PROTOCOLS["now"],
        root,
        tmp_path / "out",
        _predictor(similarity(1, (0, 0, 0), (0, 0, 0)), landmarks),
        progress=False,
    )
    assert results["failed"] == 2 and "scan" in results["failures"][0]["error"]
    (root / "imagepathsvalidation.txt").unlink()
    with pytest.raises(OccfaceError) as err:
        evaluate(PROTOCOLS["now"], root, tmp_path / "out2", None, progress=False)
    assert "imagepathsvalidation.txt" in str(err.value) and "expected layout" in str(err.value)
