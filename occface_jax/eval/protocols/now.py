"""NoW (Sanyal et al. 2019): scan-to-mesh error of single-image reconstructions, per challenge.

Per image: the predicted mesh's 7 landmarks (iBUG-68 points 36, 39, 42, 45, 30, 48, 54: eye
corners, nose tip, mouth corners; the order of NoW's ``.pp`` files) are aligned to the scan's 7 by a
similarity (Umeyama), refined by scan-to-mesh ICP with scale (``surface.scan_to_mesh_error``), and
every scan vertex's distance to the predicted surface is kept (``OUT/samples/<id>.npy``). Reported:
median, mean and std of the distances pooled over the images of each subset (the challenge folders:
neutral, expression, occlusion, selfie) and overall, in mm. ``now_metrical``: the metrical variant
(rigid alignment, no scale: the prediction's own millimetres count).

Pictures (the paper's Figure 4): ``OUT/heatmaps/<id>.png``, the aligned prediction coloured by each
vertex's distance to the nearest scan point (vertices farther than ``HEATMAP_COVER_MM`` from any
scan point, which the scan does not cover, grey), 0 to ``HEATMAP_MAX_MM``.

Layout: ``occface_jax.data.scans.NoWDataset`` (the ``now_evaluation`` release).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.scans import NoWDataset, load_scan
from occface_jax.eval.heatmap import HEATMAP_MAX_MM, HEATMAPS, save_error_heatmap
from occface_jax.eval.metrics.surface import (
    apply_similarity,
    closest_points_on_mesh,
    scan_to_mesh_alignment,
    vertex_to_scan_distances,
)
from occface_jax.eval.protocols.runner import (
    Predict,
    Protocol,
    Sample,
    by_subset,
    layout_error,
    markdown,
    safe_name,
)

LAYOUT = (
    "ROOT/imagepathsvalidation.txt (or imagepathstest.txt) listing <subject>/<challenge>/<img>.jpg, "
    "ROOT/final_release_version/iphone_pictures/<line>, ROOT/scans/<subject>/*.obj, "
    "ROOT/scans_lmks_onlypp/<subject>/*.pp"
)
LANDMARKS7 = (36, 39, 42, 45, 30, 48, 54)
HEATMAP_COVER_MM = 10.0


def samples(root: Path, split: str = "val", metrical: bool = False) -> list[Sample]:
    try:
        dataset = NoWDataset(root, split=split)
    except DatasetLayoutError as err:
        raise layout_error(root, str(err).split(": ", 1)[-1], LAYOUT) from err
    out = []
    for i, line in enumerate(dataset.lines):
        parts = Path(line).parts
        subset = parts[-2] if len(parts) >= 3 else "?"
        out.append(
            Sample(
                line,
                subset,
                {
                    "root": str(root),
                    "split": split,
                    "index": i,
                    "metrical": str(metrical).lower() in ("1", "true", "yes"),
                },
            )
        )
    return out


@functools.lru_cache(maxsize=4)
def _dataset(root: str, split: str) -> NoWDataset:
    return NoWDataset(root, split=split)


@functools.lru_cache(maxsize=8)
def _scan(path: str) -> np.ndarray:
    return np.asarray(load_scan(path)[0], np.float64)


def score(sample: Sample, predict: Predict, samples_dir: Path) -> dict[str, Any]:
    data = sample.data
    record = _dataset(data["root"], data["split"])[int(data["index"])]
    predicted = predict(record["image"], record["box"])
    scan = _scan(record["scan_path"])
    sim = scan_to_mesh_alignment(
        predicted.vertices,
        predicted.triangles,
        predicted.landmarks3d[list(LANDMARKS7)],
        scan,
        np.asarray(record["scan_landmarks"], np.float64),
        scale=not data["metrical"],
    )
    moved = apply_similarity(sim, predicted.vertices)
    dist = closest_points_on_mesh(scan, moved, predicted.triangles)[1]
    if len(predicted.triangles):
        save_error_heatmap(
            samples_dir.parent / HEATMAPS / f"{safe_name(sample.id)}.png",
            moved,
            predicted.triangles,
            vertex_to_scan_distances(moved, scan, HEATMAP_COVER_MM),
            max_mm=HEATMAP_MAX_MM,
            title=f"{sample.id}: median {np.median(dist):.2f} mm",
        )
    np.save(samples_dir / f"{safe_name(sample.id)}.npy", dist.astype(np.float32))
    return {"median": float(np.median(dist)), "mean": float(dist.mean()), "std": float(dist.std())}


def summarise(records: list[dict[str, Any]], samples_dir: Path) -> dict[str, Any]:
    """Median, mean, std of the distances pooled per subset and overall (mm)."""
    out: dict[str, Any] = {}
    for subset, rs in by_subset(records):
        pooled = np.concatenate(
            [np.load(samples_dir / f"{safe_name(r['id'])}.npy") for r in rs]
        ).astype(np.float64)
        out[subset] = {
            "median": float(np.median(pooled)),
            "mean": float(pooled.mean()),
            "std": float(pooled.std()),
            "n": len(rs),
        }
    return {"subsets": out}


def table(results: dict[str, Any]) -> str:
    rows = [
        (subset, m["n"], m["median"], m["mean"], m["std"])
        for subset, m in results["subsets"].items()
    ]
    return markdown(
        ("subset", "images", "median (mm)", "mean (mm)", "std (mm)"),
        rows,
        "Scan vertices to the predicted surface after 7-landmark similarity alignment and ICP "
        f"({'rigid, metrical' if results['protocol'] == 'now_metrical' else 'with scale'}).",
    )


PROTOCOL = Protocol(
    "now", "NoW challenge scan-to-mesh error", LAYOUT, samples, score, summarise, table
)
METRICAL = Protocol(
    "now_metrical",
    "NoW metrical scan-to-mesh error (rigid alignment, no scale)",
    LAYOUT,
    functools.partial(samples, metrical=True),
    score,
    summarise,
    table,
)
