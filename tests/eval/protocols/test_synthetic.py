"""The synthetic protocol: faces rendered by the data engine into --data, their true shapes kept;
a predictor that returns the true shape rigidly moved scores 0 mm, one with 0.2 mm noise per
vertex ~ the mean of that noise's length; the given landmarks are the truth plus 1.5 px noise."""

from __future__ import annotations

import json

import numpy as np
import pytest
from face_surface import similarity

from occface_jax.errors import OccfaceError
from occface_jax.eval.metrics.surface import aligned_vertex_distances, apply_similarity
from occface_jax.eval.protocols import PROTOCOLS, synthetic
from occface_jax.eval.protocols.runner import Predicted, evaluate


def test_known_errors_on_generated_faces(toy_model, tmp_path):
    root = tmp_path / "synth"
    synthetic.generate(root, n=2, seed=3, model=toy_model)
    given = []
    triangles = np.asarray(toy_model.triangles)[np.asarray(toy_model.face_triangles)]

    def predict(image, box, landmarks=None):
        i = int(image.stem.split("_")[0])
        with np.load(root / f"{i:04d}.npz") as data:
            truth, region = data["truth"], data["region"]
            given.append(np.std(landmarks - data["landmarks"]))
        vertices = np.zeros((toy_model.n_vertices, 3))
        noise = (
            0.2
            * np.random.default_rng(i).normal(size=truth.shape)
            * image.stem.endswith("occluded")
        )
        vertices[region] = apply_similarity(
            similarity(1.0, (10, -20, 5), (3, 1, -2)), truth + noise
        )
        return Predicted(vertices, triangles, np.zeros((68, 3)), np.zeros((68, 2)))

    results = evaluate(
        PROTOCOLS["synthetic"],
        root,
        tmp_path / "out",
        predict,
        options={"n": "2", "seed": "3"},
        progress=False,
    )
    assert results["failed"] == 0
    clean, occluded = results["conditions"]["clean"], results["conditions"]["occluded"]
    assert clean["n"] == occluded["n"] == 2 and clean["mean"] < 1e-4  # float32 truth
    # |N(0, 0.2^2 I_3)| has mean 0.2 * 2 sqrt(2 / pi); the alignment absorbs a little of it.
    assert occluded["mean"] == pytest.approx(0.2 * 2 * np.sqrt(2 / np.pi), rel=0.1)
    assert all(1.2 < g < 1.8 for g in given)  # 1.5 px of noise on the landmarks
    assert results["scaled"]["clean"]["mean"] < 1e-4
    # the baseline: the model's mean face against each true shape, rigidly aligned
    mean_face = []
    for i in range(2):
        with np.load(root / f"{i:04d}.npz") as data:
            mean = np.asarray(toy_model.mean_shape)[data["region"]]
            mean_face.append(aligned_vertex_distances(mean, data["truth"]).mean())
    assert results["mean_face"]["clean"]["mean"] == pytest.approx(np.mean(mean_face), rel=1e-6)
    assert results["mean_face"]["clean"]["mean"] > 0.1
    # Figure 4's pictures: one heat map per reconstruction and the mean per condition; the
    # errors drawn are the ones scored
    pictures = tmp_path / "out" / "heatmaps"
    names = sorted(p.name for p in pictures.glob("*.png"))
    assert names == [
        "0000_clean.png", "0000_occluded.png", "0001_clean.png", "0001_occluded.png",
        "mean_clean.png", "mean_occluded.png",
    ]  # fmt: skip
    with np.load(tmp_path / "out" / "samples" / "0001_occluded.npz") as drawn:
        scored = (tmp_path / "out" / "scored.jsonl").read_text().splitlines()
        per_face = [r for r in map(json.loads, scored) if r["id"] == "0001 occluded"][0]
        assert np.nanmean(drawn["errors"]) == pytest.approx(per_face["mean_mm"], rel=1e-5)
    with pytest.raises(OccfaceError, match="holds 2 faces of seed 3, not 4 of seed 3"):
        evaluate(
            PROTOCOLS["synthetic"],
            root,
            tmp_path / "o2",
            predict,
            options={"n": "4", "seed": "3"},
            progress=False,
        )


def test_detected_landmarks_leave_detection_to_the_predictor(toy_model, tmp_path):
    """``landmarks=detected``: the predictor gets each render without landmarks (it detects, as on
    a photo); a reconstruction 10% too large is wrong rigidly aligned, right aligned with scale; an
    unknown source is one line."""
    root = tmp_path / "synth"
    synthetic.generate(root, n=1, seed=3, model=toy_model)
    calls = []
    triangles = np.asarray(toy_model.triangles)[np.asarray(toy_model.face_triangles)]

    def predict(image, box, **kwargs):
        calls.append((image.name, kwargs))
        with np.load(root / "0000.npz") as data:
            vertices = np.zeros((toy_model.n_vertices, 3))
            vertices[data["region"]] = 1.1 * data["truth"]  # 10% too large
        return Predicted(vertices, triangles, np.zeros((68, 3)), np.zeros((68, 2)))

    options = {"n": "1", "seed": "3", "landmarks": "detected"}
    results = evaluate(
        PROTOCOLS["synthetic"], root, tmp_path / "out", predict, options=options, progress=False
    )
    assert results["failed"] == 0 and results["conditions"]["clean"]["mean"] > 1.0
    assert results["scaled"]["clean"]["mean"] < 1e-4  # the size is all that is wrong
    assert calls == [("0000_clean.png", {}), ("0000_occluded.png", {})]
    assert "landmarks detected" in (tmp_path / "out" / "results.md").read_text()
    with pytest.raises(OccfaceError, match="landmarks='mesh': 'given' or 'detected'"):
        evaluate(
            PROTOCOLS["synthetic"],
            root,
            tmp_path / "o2",
            predict,
            options={"landmarks": "mesh"},
            progress=False,
        )
