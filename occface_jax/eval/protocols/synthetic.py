"""Synthetic faces with ground truth: the data engine's renders, reconstructed from the photo.

``--data DIR`` holds the faces: on the first run (no ``DIR/synthetic.json``) ``n`` faces are rendered
there by ``data.synth.SyntheticFaces`` with ``experiments/synthetic_fit.py``'s settings (224 px,
Deng camera, pose within (12, 30, 8) degrees, one occluder over 15-40% of the face; ``seed``): per
face ``<i>_clean.png``, ``<i>_occluded.png`` and ``<i>.npz`` (true 68 landmarks px, the true shape's
face-region vertices in mm and their indices, occluder coverage). Each image is one sample: with
``landmarks=given`` (default) the reconstruction gets the true landmarks plus N(0, 1.5^2) px noise
(seeded per face, the same for both images, as the experiment) instead of detection, and the fit
uses the model's own 68 landmark vertices (those are the true landmarks); with
``landmarks=detected`` the pipeline detects and landmarks the render as it would a photo (the
default detector, face mesh and dense term, the iBUG landmark vertices), so the errors include the
detector's. The error is the mean per-vertex
distance (mm) over the face region after rigid alignment to the true shape
(``surface.aligned_vertex_distances``), and after alignment with scale (one photo hardly tells a
face's size from its distance). Reported mean +/- std per condition (clean, occluded), beside the
unfitted mean face's (the baseline to beat; folders generated before it was stored lack it).
Pictures (the paper's Figure 4): ``OUT/heatmaps/<id>.png``, each reconstruction coloured by its
per-vertex error (0 to ``HEATMAP_MAX_MM``), and ``OUT/heatmaps/mean_<condition>.png``, the mean
error per vertex over the faces on their mean reconstruction.

The experiment fits the rendered crop directly; here the photo goes through the pipeline's
alignment first (the public app API), so the two differ by that resampling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from occface_jax.data.occluders import OcclusionConfig
from occface_jax.data.synth import SynthConfig, SyntheticFaces
from occface_jax.errors import OccfaceError
from occface_jax.eval.heatmap import HEATMAP_MAX_MM, HEATMAPS, on_vertices, save_error_heatmap
from occface_jax.eval.metrics.surface import aligned_vertex_distances
from occface_jax.eval.protocols.runner import (
    Predict,
    Protocol,
    Sample,
    markdown,
    mean_std,
    plus_minus,
    safe_name,
)
from occface_jax.io import images as imageio
from occface_jax.morphable import geometry

LAYOUT = (
    "DIR/synthetic.json, DIR/<i>_clean.png, DIR/<i>_occluded.png, DIR/<i>.npz "
    "(written by the first `occface evaluate synthetic --data DIR`)"
)
INDEX = "synthetic.json"
CONDITIONS = ("clean", "occluded")
LANDMARK_NOISE_PX = 1.5


def benchmark_faces(
    model: Any,
    seed: int,
    occlusion: OcclusionConfig = OcclusionConfig(coverage=(0.15, 0.4), count=(1, 1)),
) -> SyntheticFaces:
    """The data engine's faces of ``model`` as the synthetic benchmark samples them (this protocol,
    ``experiments/synthetic_fit.py``, ``experiments/regressor.py``): 224 px, no focal jitter, pose
    within (12, 30, 8) degrees, translation within (0.05, 0.05, 0.4) dm, ``occlusion`` (default one
    occluder over 15-40% of the face)."""
    config = SynthConfig(
        image_size=224,
        focal_jitter=0.0,
        max_angles_deg=(12.0, 30.0, 8.0),
        translation_dm=(0.05, 0.05, 0.4),
        occlusion=occlusion,
    )
    return SyntheticFaces(model, config, seed=seed)


def generate(root: Path, n: int, seed: int, model: Any = None) -> None:
    """Render ``n`` faces (seed ``seed``) of ``model`` (default: ``load_model()``) into ``root``."""
    from occface_jax.morphable import load_model  # the model file only when generating

    model = load_model() if model is None else model
    synth = benchmark_faces(model, seed)
    region = np.flatnonzero(np.asarray(model.face_region))
    mean = np.asarray(model.mean_shape)[region]
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        s = synth[i]
        coeffs = synth.layout.split(np.asarray(s["coeffs"]))
        shape = np.asarray(geometry.shape(model, coeffs["id"], coeffs["exp"]))
        for condition in CONDITIONS:
            imageio.save_image(root / f"{i:04d}_{condition}.png", s[condition])
        np.savez(
            root / f"{i:04d}.npz",
            landmarks=np.asarray(s["landmarks"], np.float64),
            truth=shape[region],
            mean=mean,
            region=region,
            coverage=np.float32(s["coverage"]),
        )
    (root / INDEX).write_text(json.dumps({"n": n, "seed": seed, "model": str(model.name)}))


LANDMARK_SOURCES = ("given", "detected")


def samples(root: Path, n: str = "12", seed: str = "7", landmarks: str = "given") -> list[Sample]:
    if landmarks not in LANDMARK_SOURCES:
        raise OccfaceError(f"synthetic: landmarks={landmarks!r}: 'given' or 'detected'")
    index = root / INDEX
    if not index.is_file():
        generate(root, int(n), int(seed))
    info = json.loads(index.read_text())
    if (info["n"], info["seed"]) != (int(n), int(seed)):
        raise OccfaceError(
            f"{root} holds {info['n']} faces of seed {info['seed']}, not {n} of seed {seed}; "
            "use another --data folder"
        )
    return [
        Sample(
            f"{i:04d} {c}",
            c,
            {"root": str(root), "index": i, "seed": int(seed), "detected": landmarks == "detected"},
        )
        for i in range(info["n"])
        for c in CONDITIONS
    ]


def score(sample: Sample, predict: Predict, samples_dir: Path) -> dict[str, Any]:
    root, i = Path(sample.data["root"]), int(sample.data["index"])
    with np.load(root / f"{i:04d}.npz", allow_pickle=False) as data:
        truth, region = data["truth"], data["region"]
        landmarks, coverage = data["landmarks"], float(data["coverage"])
        mean = data["mean"] if "mean" in data.files else None
    image = root / f"{i:04d}_{sample.subset}.png"
    if sample.data.get("detected"):
        predicted = predict(image, None)
    else:
        rng = np.random.default_rng([int(sample.data["seed"]), i, 1])
        given = landmarks + rng.normal(0, LANDMARK_NOISE_PX, landmarks.shape)
        predicted = predict(image, None, landmarks=given)
    distances = aligned_vertex_distances(predicted.vertices[region], truth)
    scaled = aligned_vertex_distances(predicted.vertices[region], truth, scale=True)
    baseline = {}
    if mean is not None:
        baseline = {
            "mean_face_mm": float(aligned_vertex_distances(mean, truth).mean()),
            "mean_face_scaled_mm": float(aligned_vertex_distances(mean, truth, scale=True).mean()),
        }
    if len(predicted.triangles):
        errors = on_vertices(len(predicted.vertices), region, distances)
        np.savez(
            samples_dir / f"{safe_name(sample.id)}.npz",
            vertices=np.asarray(predicted.vertices, np.float32),
            triangles=np.asarray(predicted.triangles, np.int32),
            errors=errors.astype(np.float32),
        )
        save_error_heatmap(
            samples_dir.parent / HEATMAPS / f"{safe_name(sample.id)}.png",
            predicted.vertices,
            predicted.triangles,
            errors,
            max_mm=HEATMAP_MAX_MM,
            title=f"{sample.id}: {distances.mean():.2f} mm",
        )
    return {
        "mean_mm": float(distances.mean()),
        "scaled_mm": float(scaled.mean()),
        "coverage": coverage,
        **baseline,
    }


def mean_heatmaps(records: list[dict[str, Any]], samples_dir: Path) -> list[Path]:
    """``OUT/heatmaps/mean_<condition>.png``: per condition, the mean per-vertex error over the
    scored faces drawn on their mean reconstruction (model frame)."""
    written = []
    for condition in CONDITIONS:
        files = [samples_dir / f"{safe_name(r['id'])}.npz" for r in records]
        files = [f for f, r in zip(files, records, strict=True) if r["subset"] == condition]
        files = [f for f in files if f.is_file()]
        if not files:
            continue
        arrays = [np.load(f, allow_pickle=False) for f in files]
        vertices = np.mean([a["vertices"] for a in arrays], axis=0)
        errors = np.mean([a["errors"] for a in arrays], axis=0)
        written.append(
            save_error_heatmap(
                samples_dir.parent / HEATMAPS / f"mean_{condition}.png",
                vertices,
                arrays[0]["triangles"],
                errors,
                max_mm=HEATMAP_MAX_MM,
                title=f"{condition}: mean of {len(files)} faces",
            )
        )
    return written


def summarise(records: list[dict[str, Any]], samples_dir: Path) -> dict[str, Any]:
    conditions = [c for c in CONDITIONS if any(r["subset"] == c for r in records)]
    mean_heatmaps(records, samples_dir)

    def stats(key: str, condition: str) -> dict[str, Any]:
        return mean_std([r.get(key) for r in records if r["subset"] == condition])

    return {
        "conditions": {c: stats("mean_mm", c) for c in conditions},
        "scaled": {c: stats("scaled_mm", c) for c in conditions},
        "mean_face": {c: stats("mean_face_mm", c) for c in conditions},
        "mean_face_scaled": {c: stats("mean_face_scaled_mm", c) for c in conditions},
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        (f"{who}, {c}", m["n"], plus_minus(m, 3), plus_minus(results[scaled][c], 3))
        for who, rigid, scaled in (
            ("reconstruction", "conditions", "scaled"),
            ("mean face, no fit", "mean_face", "mean_face_scaled"),
        )
        for c, m in results.get(rigid, {}).items()
        if m["n"]
    ]
    detected = results.get("options", {}).get("landmarks") == "detected"
    given = "landmarks detected" if detected else "true landmarks + 1.5 px noise given"
    return markdown(
        ("", "faces", "mean vertex error (mm)", "with scale (mm)"),
        rows,
        f"Face-region vertices after rigid alignment to the true shape (and with scale); {given}.",
    )


def fit_settings(landmarks: str = "given", **_: str) -> tuple[str, ...]:
    """The given landmarks are the model's own 68 vertices, projected: the fit uses those."""
    return ("landmark_vertices=model",) if landmarks == "given" else ()


PROTOCOL = Protocol(
    "synthetic",
    "synthetic faces with ground truth shape (the data engine)",
    LAYOUT,
    samples,
    score,
    summarise,
    table,
    writes_data=True,
    fit_overrides=fit_settings,
)
