"""MICC known answers: a predicted mesh that is the scan's surface moved by a known similarity, the
scan carrying N(0, sigma^2) noise along its normals, gives Deng et al.'s RMSE ~ sigma (ICP with scale
undoes the similarity) and Genova et al.'s mean ~ sigma sqrt(2 / pi) when the motion is rigid; the
whole protocol on a folder in MICC's published layout, with the frames' meshes averaged."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from face_surface import grid_mesh, inverse_apply, noisy_scan, similarity

from occface_jax.errors import OccfaceError
from occface_jax.eval.protocols import PROTOCOLS, micc
from occface_jax.eval.protocols.runner import Predicted, evaluate
from occface_jax.io import images as imageio
from occface_jax.io.mesh import write_obj

SIGMA = 0.5


def _prediction(sim, extent: float = 130.0, n: int = 161, jitter=None) -> Predicted:
    """The exact surface on a fine grid, moved by the inverse of ``sim`` (so ``sim`` aligns it)."""
    vertices, triangles, _ = grid_mesh(n, extent)
    if jitter is not None:
        vertices = vertices + jitter
    moved = inverse_apply(sim, vertices)
    tip = moved[np.argmax(vertices[:, 2])]
    landmarks = np.zeros((68, 3))
    landmarks[micc.NOSE_TIP] = tip + 2.0  # a rough nose tip: ICP does the rest
    return Predicted(moved, triangles, landmarks, np.zeros((68, 2)))


@pytest.fixture(scope="module")
def scan():
    return noisy_scan(81, 110.0, SIGMA, seed=1)


def test_deng_rmse_is_the_noise_after_a_similarity(scan):
    out = micc.score_mesh(
        _prediction(similarity(1.08, (4.0, -6.0, 3.0), (3.0, -4.0, 10.0))), scan[0]
    )
    assert out["deng"]["scale"] == pytest.approx(1.08, rel=2e-3)
    assert out["deng"]["rmse"] == pytest.approx(SIGMA, rel=0.08)
    assert out["deng"]["p90"] == pytest.approx(1.645 * SIGMA, rel=0.1)  # |N(0, s^2)|'s 90th pct
    # The 95 mm crop: only scan points within 95 mm of the tip count.
    points, tip = micc.crop_scan(scan[0])
    assert out["scan_points"] == len(points) < len(scan[0])
    assert np.linalg.norm(points - tip, axis=1).max() <= 95.0
    # One scale (1) cannot undo a scale of 1.08: Genova's error is well above the noise's.
    assert out["genova"]["mean"] > 1.5 * SIGMA * np.sqrt(2 / np.pi)


def test_genova_mean_is_the_mean_absolute_noise_after_a_rigid_motion(scan):
    out = micc.score_mesh(_prediction(similarity(1.0, (3.0, 5.0, -2.0), (-6.0, 2.0, 5.0))), scan[0])
    assert out["genova"]["mean"] == pytest.approx(SIGMA * np.sqrt(2 / np.pi), rel=0.08)
    assert out["genova"]["inside"] == 1.0  # the prediction covers the whole crop
    # A prediction covering less: points beyond its edge leave the intersection.
    small = micc.score_mesh(
        _prediction(similarity(1.0, (3.0, 5.0, -2.0), (-6.0, 2.0, 5.0)), extent=60.0, n=81),
        scan[0],
    )
    assert 0.2 < small["genova"]["inside"] < 0.8
    assert small["genova"]["mean"] == pytest.approx(SIGMA * np.sqrt(2 / np.pi), rel=0.15)


def _ripple() -> np.ndarray:
    """A smooth 3 mm ripple along z over the prediction's grid vertices (N, 3)."""
    xy = grid_mesh(161, 130.0)[2]
    return 3.0 * np.sin(xy[:, :1] / 15.0) * np.cos(xy[:, 1:] / 20.0) * np.array([0, 0, 1.0])


def _write_micc(root, scan):
    for subject in ("subject_01",):
        write_obj(root / subject / "Model" / "frontal1" / "obj" / "scan.obj", *scan)
        for setting in ("Indoor-Cooperative", "PTZ-Outdoor"):
            for k, grey in enumerate((0.2, 0.8)):
                frame = np.full((64, 64, 3), grey, np.float32)
                imageio.save_image(root / subject / "Video" / setting / f"f{k}.png", frame)


def test_the_protocol_on_the_published_layout_averages_each_videos_frames(scan, tmp_path):
    root = tmp_path / "MICC"
    _write_micc(root, scan)
    sim = similarity(1.05, (2.0, -3.0, 1.0), (1.0, 2.0, -3.0))
    # Frames disagree by a smooth +/- 3 mm ripple (dark frame +, light frame -): the average is exact.
    wobble = _ripple()
    calls = []

    def predict(image, box):
        calls.append(float(np.mean(image)))
        return _prediction(sim, jitter=wobble if np.mean(image) < 0.5 else -wobble)

    results = evaluate(PROTOCOLS["micc"], root, tmp_path / "out", predict, progress=False)
    assert len(calls) == 4 and results["samples"] == 2 and results["failed"] == 0
    assert set(results["subsets"]) == {"Indoor-Cooperative", "PTZ-Outdoor", "all"}
    deng = results["subsets"]["all"]["deng_rmse"]
    assert deng["n"] == 2 and deng["mean"] == pytest.approx(SIGMA, rel=0.08)
    one_frame = micc.score_mesh(_prediction(sim, jitter=wobble), scan[0])
    assert one_frame["deng"]["rmse"] > 2 * SIGMA  # without the average: the wobble shows
    pictures = sorted(p.name for p in (tmp_path / "out" / "heatmaps").glob("*.png"))
    assert len(pictures) == 2  # one heat map per video
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written["subsets"]["all"]["deng_rmse"]["mean"] == deng["mean"]
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| all | 2 |" in table and "Deng RMSE (mm)" in table


def test_wrong_layouts_are_one_line_naming_the_path(tmp_path):
    with pytest.raises(OccfaceError) as err:
        evaluate(PROTOCOLS["micc"], tmp_path, tmp_path / "out", None, progress=False)
    assert str(tmp_path) in str(err.value) and "expected layout: ROOT/subject_<nn>" in str(
        err.value
    )
    (tmp_path / "subject_01" / "Video" / "PTZ-Indoor").mkdir(parents=True)
    imageio.save_image(
        tmp_path / "subject_01" / "Video" / "PTZ-Indoor" / "f.png", np.zeros((8, 8, 3))
    )
    with pytest.raises(OccfaceError) as err:
        evaluate(PROTOCOLS["micc"], tmp_path, tmp_path / "out", None, progress=False)
    assert "subject_01/Model/frontal1/obj: no scan .obj" in str(err.value)
    assert "\n" not in str(err.value)


def _face_landmarks(size: int = 64) -> np.ndarray:
    """A plausible iBUG-68 layout filling a ``size`` frame (jaw, brows, nose, eyes, mouth)."""
    c, r = size / 2, size * 0.3
    jaw = np.stack(
        [
            c - r * np.cos(np.linspace(0, np.pi, 17)),
            c + r * np.sin(np.linspace(0, np.pi, 17)) * 0.9,
        ],
        1,
    )
    brows = np.stack([np.linspace(c - r * 0.8, c + r * 0.8, 10), np.full(10, c - r * 0.55)], 1)
    nose = np.stack(
        [
            np.r_[np.full(4, c), np.linspace(c - r * 0.2, c + r * 0.2, 5)],
            np.r_[np.linspace(c - r * 0.4, c, 4), np.full(5, c + r * 0.1)],
        ],
        1,
    )
    eye = np.stack(
        [
            np.cos(np.linspace(0, 2 * np.pi, 6, endpoint=False)) * r * 0.15,
            np.sin(np.linspace(0, 2 * np.pi, 6, endpoint=False)) * r * 0.07,
        ],
        1,
    )
    eyes = np.r_[eye + [c - r * 0.4, c - r * 0.35], eye + [c + r * 0.4, c - r * 0.35]]
    a = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    mouth = np.stack([c + r * 0.35 * np.cos(a), c + r * 0.45 + r * 0.1 * np.sin(a)], 1)
    return np.concatenate([jaw, brows, nose, eyes, mouth])


def test_occluders_score_each_video_again_with_one_pasted(scan, tmp_path):
    root = tmp_path / "MICC"
    _write_micc(root, scan)
    sim = similarity(1.0, (2.0, -3.0, 1.0), (1.0, 2.0, -3.0))
    ripple = _ripple()
    calls = []

    def predict(image, box):  # clean frames are constant grey; an occluded one is not
        occluded = float(np.std(image)) > 1e-6
        calls.append(occluded)
        good = _prediction(sim, jitter=ripple if occluded else None)
        return dataclasses.replace(good, detected2d=_face_landmarks())

    options = {"occluders": "glasses,sunglasses"}
    results = evaluate(
        PROTOCOLS["micc"], root, tmp_path / "out", predict, options=options, progress=False
    )
    assert calls == [False, True] * 4  # each frame clean, then occluded
    subsets = results["subsets"]
    assert set(subsets) == {
        "Indoor-Cooperative",
        "PTZ-Outdoor",
        "all",
        "Indoor-Cooperative occluded",
        "PTZ-Outdoor occluded",
        "all occluded",
    }
    assert subsets["all"]["deng_rmse"]["mean"] == pytest.approx(SIGMA, rel=0.08)
    assert subsets["all occluded"]["deng_rmse"]["mean"] > 2 * SIGMA
    with pytest.raises(OccfaceError, match="unknown 'scarf'"):
        evaluate(
            PROTOCOLS["micc"],
            root,
            tmp_path / "o2",
            predict,
            options={"occluders": "scarf"},
            progress=False,
        )
