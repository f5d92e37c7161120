"""The scans protocol's known answers: a textured scan that is the default model's mean face in
other units (centimetres, turned), with noise N(0, sigma^2) along its normals, written in the
layout. A predictor returning the mean face moved by a known similarity scores the noise (mean
~ sigma sqrt(2 / pi)), and so does the mean-face baseline; the renders it is given show the face,
the occluded ones an occluder over it; a scan without texture coordinates fails its samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
from face_surface import inverse_apply, similarity

from occface_jax.errors import OccfaceError
from occface_jax.eval.protocols import PROTOCOLS, scans
from occface_jax.eval.protocols.runner import Predicted, evaluate
from occface_jax.io.mesh import write_obj, write_textured_obj

SIGMA = 0.3
TO_FILE = similarity(0.1, (0.0, 0.0, 90.0), (1.0, 2.0, 3.0))  # mm -> the file's cm, turned


def _vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    face = np.cross(b - a, c - a)
    normals = np.zeros_like(vertices)
    for i in range(3):
        np.add.at(normals, triangles[:, i], face)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


@pytest.fixture(scope="module")
def mean_face(default_model):
    m = default_model
    mean = np.asarray(m.mean_shape, np.float64)
    tris = np.asarray(m.triangles)[np.asarray(m.face_triangles)]
    used = np.unique(tris)
    compact = np.full(len(mean), -1)
    compact[used] = np.arange(len(used))
    return mean, tris, compact, used, np.asarray(m.landmarks68)


def _write_scan(root, mean_face, uv=True):
    mean, tris, compact, used, lm68 = mean_face
    vertices, triangles = mean[used], compact[tris]
    noise = np.random.default_rng(0).normal(0.0, SIGMA, len(vertices))
    noisy = vertices + noise[:, None] * _vertex_normals(vertices, triangles)
    in_file = inverse_apply(TO_FILE, noisy)
    if uv:
        span = vertices[:, :2].max(0) - vertices[:, :2].min(0)
        coords = (vertices[:, :2] - vertices[:, :2].min(0)) / span
        yy, xx = np.mgrid[0:64, 0:64] / 63.0
        texture = np.stack([0.4 + 0.4 * xx, 0.3 + 0.5 * yy, 0.6 - 0.3 * xx * yy], -1)
        write_textured_obj(root / "face.obj", in_file, triangles, coords, triangles, texture)
    else:
        write_obj(root / "face.obj", in_file, triangles)
    points = inverse_apply(TO_FILE, mean[lm68]).tolist()
    (root / "face.ljson").write_text(json.dumps({"landmarks": {"points": points}}))


def _predictor(mean_face, seen):
    mean, tris, _, _, lm68 = mean_face
    moved = similarity(1.2, (5.0, -10.0, 3.0), (4.0, -2.0, 30.0))

    def predict(image, box, landmarks=None):
        seen.append((np.asarray(image), np.asarray(box), landmarks))
        vertices = inverse_apply(moved, mean)
        return Predicted(vertices, tris, vertices[lm68], np.zeros((68, 2)))

    return predict


def test_known_errors_and_the_renders_given(mean_face, tmp_path):
    root = tmp_path / "scans"
    root.mkdir()
    _write_scan(root, mean_face)
    seen = []
    results = evaluate(
        PROTOCOLS["scans"],
        root,
        tmp_path / "out",
        _predictor(mean_face, seen),
        options={"yaws": "0,30"},
        progress=False,
    )
    assert results["samples"] == 4 and results["failed"] == 0
    expected = SIGMA * np.sqrt(2 / np.pi)
    for subset in ("clean", "occluded", "all"):
        assert results["subsets"][subset]["mean"] == pytest.approx(expected, rel=0.15)
    assert results["mean_face"]["scans"]["face"]["mean"] == pytest.approx(expected, rel=0.15)
    # the renders: the textured face over a grey background, the landmark box on it
    clean0, box0, _ = seen[0]
    occluded0 = seen[1][0]
    assert clean0.shape == (scans.SIZE, scans.SIZE, 3)
    face = np.abs(clean0 - 0.5).max(-1) > 0.02
    assert 0.1 < face.mean() < 0.9
    ys, xs = np.nonzero(face)
    assert box0[0] >= xs.min() - 2 and box0[2] <= xs.max() + 2
    assert np.abs(occluded0 - clean0).max(-1).__gt__(0.05).mean() > 0.02  # an occluder drawn
    # the turned view sees the face elsewhere in the image than the frontal one
    assert np.abs(seen[2][0] - clean0).max() > 0.1
    table = (tmp_path / "out" / "results.md").read_text()
    assert "mean face, no fit" in table and "**occluded** (2 views)" in table
    assert (tmp_path / "out" / "heatmaps" / "face_yaw_30_occluded.png").is_file()


def test_bad_scans_are_one_line(mean_face, tmp_path):
    root = tmp_path / "scans"
    root.mkdir()
    _write_scan(root, mean_face, uv=False)
    results = evaluate(
        PROTOCOLS["scans"],
        root,
        tmp_path / "out",
        _predictor(mean_face, []),
        options={"yaws": "0", "occluders": ""},
        progress=False,
    )
    assert results["samples"] == 1 and results["failed"] == 1
    assert "texture coordinates" in results["failures"][0]["error"]
    with pytest.raises(OccfaceError, match="no such scan"):
        scans.samples(root, names="james")
    (root / "face.ljson").unlink()
    with pytest.raises(OccfaceError, match="no samples found"):
        evaluate(PROTOCOLS["scans"], root, tmp_path / "out2", _predictor(mean_face, []))


def test_true_landmarks_are_given_on_request(mean_face, tmp_path):
    root = tmp_path / "scans"
    root.mkdir()
    _write_scan(root, mean_face)
    seen = []
    options = {"yaws": "0", "occluders": "", "landmarks": "truth"}
    evaluate(
        PROTOCOLS["scans"], root, tmp_path / "out", _predictor(mean_face, seen), options=options
    )
    image, box, landmarks = seen[0]
    assert landmarks.shape == (68, 2)
    np.testing.assert_allclose(np.r_[landmarks.min(0), landmarks.max(0)], box)
    # the eyes above the mouth, the nose tip between the eye corners
    assert landmarks[36:48, 1].mean() < landmarks[48:68, 1].mean()
    assert landmarks[36, 0] < landmarks[30, 0] < landmarks[45, 0]
    with pytest.raises(OccfaceError, match="landmarks='dlib'"):
        scans.samples(root, landmarks="dlib")
