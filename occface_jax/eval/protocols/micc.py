"""MICC Florence (Bagdanov et al. 2011): reconstruction error against each subject's 3D scan.

One sample is one video (subject x setting: Indoor-Cooperative, PTZ-Indoor, PTZ-Outdoor): every
``frame_step``-th frame (at most ``max_frames``) is reconstructed and the vertices averaged into one
mesh per video, as Genova et al. (2018) and Deng et al. (2019) do. The ground truth is the
subject's ``frontal1`` scan (mm) cropped to ``crop_mm`` (95) around its nose tip (the scan's
largest-z vertex: MICC's frontal scans face +z; the prediction's nose tip is iBUG landmark 30).
Two published variants, both from the same start (nose tips together, prediction in mm):

- **Deng et al.**: ICP with one isotropic scale per mesh (``surface.refine_similarity``,
  point-to-plane steps: point-to-point ICP slides along a smooth face for dozens of rounds), then the
  point-to-plane RMSE of the cropped scan's points to the prediction; reported mean +/- std over
  the videos, per setting. ``p90`` is the 90th percentile of a mesh's point errors (the "90%
  largest error" figure), averaged over the videos.
- **Genova et al.**: one scale for every mesh, 1 (prediction and scans are both in mm), rigid ICP,
  the mean point-to-plane error over the scan points inside the two surfaces' intersection
  (whose closest prediction point is not on the prediction's open boundary).

With ``occluders=glasses`` (kinds of ``data.occluders``, comma-separated) every frame is also
reconstructed with one occluder pasted from its clean reconstruction's detected landmarks, and the
occluded videos are reported beside the clean ones (``<setting> occluded``).

Pictures (the paper's Figure 4): ``OUT/heatmaps/<video>[_occluded].png``, each video's mean mesh
after Deng's alignment, coloured by each vertex's distance to the nearest scan point (vertices
beyond the 95 mm crop grey), 0 to ``HEATMAP_MAX_MM``.

Layout: ``ROOT/subject_<nn>/Model/frontal1/obj/*.obj`` and ``ROOT/subject_<nn>/Video/<setting>/``
(videos or extracted frames), as ``occface_jax.data.scans.MiccFlorence`` reads it.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from occface_jax.data.augment import occlude_photo
from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.data.scans import MICC_SETTINGS, MiccFlorence, load_scan
from occface_jax.eval.heatmap import HEATMAP_MAX_MM, HEATMAPS, save_error_heatmap
from occface_jax.eval.metrics.surface import (
    apply_similarity,
    point_to_plane_distances,
    refine_similarity,
    vertex_to_scan_distances,
)
from occface_jax.eval.protocols.runner import (
    Predict,
    Predicted,
    Protocol,
    Sample,
    by_subset,
    layout_error,
    markdown,
    mean_std,
    occluder_kinds,
    plus_minus,
    safe_name,
)

LAYOUT = (
    "ROOT/subject_<nn>/Model/frontal1/obj/<scan>.obj and ROOT/subject_<nn>/Video/"
    "{Indoor-Cooperative,PTZ-Indoor,PTZ-Outdoor}/ (videos or frame images)"
)
NOSE_TIP = 30  # iBUG-68
CROP_MM = 95.0


def samples(
    root: Path,
    frame_step: int = 50,
    max_frames: int = 20,
    settings: str = ",".join(MICC_SETTINGS),
    occluders: str = "",
) -> list[Sample]:
    """One sample per video (subject, setting) with its frame indices into ``MiccFlorence``;
    ``occluders`` (occluder kinds, e.g. "glasses") scores each video a second time occluded."""
    kinds = occluder_kinds("micc", occluders)
    try:
        dataset = MiccFlorence(
            root, settings=tuple(settings.split(",")), frame_step=int(frame_step)
        )
    except DatasetLayoutError as err:
        raise layout_error(root, str(err).split(": ", 1)[-1], LAYOUT) from err
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, frame in enumerate(dataset.frames):
        groups[(frame.subject, frame.setting)].append(i)
    out = []
    for (subject, setting), indices in sorted(groups.items()):
        if dataset.scans[subject] is None:
            raise layout_error(
                root / subject / "Model" / "frontal1" / "obj", "no scan .obj", LAYOUT
            )
        if len(indices) > int(max_frames):  # spread over the whole video
            indices = [indices[int(k)] for k in np.linspace(0, len(indices) - 1, int(max_frames))]
        out.append(
            Sample(
                f"{subject}/{setting}",
                setting,
                {
                    "root": str(root),
                    "frames": indices,
                    "settings": settings,
                    "frame_step": frame_step,
                    "occluders": list(kinds),
                },
            )
        )
    if not out:
        raise layout_error(root, "no video or frame found under subject_*/Video/", LAYOUT)
    return out


def crop_scan(vertices: np.ndarray, crop_mm: float = CROP_MM) -> tuple[np.ndarray, np.ndarray]:
    """(the scan vertices within ``crop_mm`` of its nose tip, the nose tip): the largest-z vertex."""
    tip = vertices[np.argmax(vertices[:, 2])]
    return vertices[np.linalg.norm(vertices - tip, axis=1) <= crop_mm], tip


def score_mesh(
    predicted: Predicted,
    scan_vertices: np.ndarray,
    crop_mm: float = CROP_MM,
    iterations: int = 10,
    heatmap: Path | None = None,
) -> dict[str, Any]:
    """Both variants' errors (mm) of one predicted mesh against one scan (see the module text);
    with ``heatmap`` (a PNG path) the aligned mesh's distances to the scan drawn there."""
    points, tip = crop_scan(np.asarray(scan_vertices, np.float64), crop_mm)
    start = (1.0, np.eye(3), tip - predicted.landmarks3d[NOSE_TIP])
    out: dict[str, Any] = {"scan_points": int(len(points))}
    for variant, scale in (("deng", True), ("genova", False)):
        sim = refine_similarity(
            start,
            predicted.vertices,
            predicted.triangles,
            points,
            iterations,
            95.0,
            scale,
            point_to_plane=True,
        )
        moved = apply_similarity(sim, predicted.vertices)
        dist, inside = point_to_plane_distances(points, moved, predicted.triangles)
        if variant == "deng":
            if heatmap is not None and len(predicted.triangles):
                near = vertex_to_scan_distances(moved, points)
                near[np.linalg.norm(moved - tip, axis=1) > crop_mm] = np.nan
                save_error_heatmap(
                    heatmap,
                    moved,
                    predicted.triangles,
                    near,
                    max_mm=HEATMAP_MAX_MM,
                    title=f"{heatmap.stem}: RMSE {np.sqrt(np.mean(dist**2)):.2f} mm",
                )
            out["deng"] = {
                "rmse": float(np.sqrt(np.mean(dist**2))),
                "mean": float(dist.mean()),
                "p90": float(np.percentile(dist, 90)),
                "scale": float(sim[0]),
            }
        else:
            kept = dist[inside]
            out["genova"] = {
                "mean": float(kept.mean()) if kept.size else None,
                "inside": float(inside.mean()),
            }
    return out


@functools.lru_cache(maxsize=4)
def _dataset(root: str, settings: str, frame_step: int) -> MiccFlorence:
    return MiccFlorence(root, settings=tuple(settings.split(",")), frame_step=frame_step)


def _mean(predictions: list[Predicted]) -> Predicted:
    return Predicted(
        vertices=np.mean([p.vertices for p in predictions], axis=0),
        triangles=predictions[0].triangles,
        landmarks3d=np.mean([p.landmarks3d for p in predictions], axis=0),
        landmarks2d=predictions[0].landmarks2d,
    )


def score(sample: Sample, predict: Predict, samples_dir: Path) -> dict[str, Any]:
    """Reconstruct the video's frames, average the meshes, score against the subject's scan; with
    occluders, again on each frame with one pasted from the clean frame's detected landmarks
    (seeded by video and frame; 5-35% of the face), as the paper's Sec. 5.3.1 adds eyeglasses."""
    data = sample.data
    dataset = _dataset(data["root"], data["settings"], int(data["frame_step"]))
    kinds = tuple(data.get("occluders", ()))
    clean, occluded = [], []
    for index in data["frames"]:
        record = dataset[index]
        clean.append(predict(record["image"], None))
        if kinds and clean[-1].detected2d is not None:
            rng = np.random.default_rng([sum(map(ord, sample.id)), int(index)])
            config = OcclusionConfig(kinds=kinds, count=(1, 1), coverage=(0.05, 0.35))
            pasted = occlude_photo(
                record["image"], rng, landmarks=clean[-1].detected2d, config=config
            )
            occluded.append(predict(pasted["occluded"], None))
    scan, _ = load_scan(record["scan_path"])
    pictures = samples_dir.parent / HEATMAPS
    name = safe_name(sample.id)
    out = {
        "frames": len(clean),
        **score_mesh(_mean(clean), scan, heatmap=pictures / f"{name}.png"),
    }
    if occluded:
        out["occluded"] = score_mesh(
            _mean(occluded), scan, heatmap=pictures / f"{name}_occluded.png"
        )
    return out


def summarise(records: list[dict[str, Any]], samples_dir: Path) -> dict[str, Any]:
    """Deng's RMSE and p90, Genova's mean: mean +/- std over videos, per setting and overall
    (``subsets``; with occluders the same of the occluded frames, ``subsets`` "<setting>
    occluded")."""
    out: dict[str, Any] = {}
    for condition in ("clean", "occluded"):
        for subset, rs in by_subset(records):
            rs = [r if condition == "clean" else r.get("occluded") for r in rs]
            rs = [r for r in rs if r is not None]
            if not rs:
                continue
            out[subset if condition == "clean" else f"{subset} occluded"] = {
                "deng_rmse": mean_std([r["deng"]["rmse"] for r in rs]),
                "deng_p90": mean_std([r["deng"]["p90"] for r in rs]),
                "genova_mean": mean_std([r["genova"]["mean"] for r in rs]),
            }
    return {"subsets": out}


def table(results: dict[str, Any]) -> str:
    rows = [
        (
            subset,
            m["deng_rmse"]["n"],
            plus_minus(m["deng_rmse"]),
            plus_minus(m["deng_p90"]),
            plus_minus(m["genova_mean"]),
        )
        for subset, m in results["subsets"].items()
    ]
    return markdown(
        ("setting", "videos", "Deng RMSE (mm)", "Deng 90% (mm)", "Genova mean (mm)"),
        rows,
        "Deng et al.: ICP with scale, 95 mm crop, point-to-plane RMSE; Genova et al.: one scale (1), "
        "rigid ICP, mean error over the intersection. Published (Deng et al. variant): seed paper "
        "1.61 ± 0.73 mm.",
    )


PROTOCOL = Protocol(
    "micc",
    "MICC Florence scan-to-mesh error (Deng et al.'s and Genova et al.'s variants)",
    LAYOUT,
    samples,
    score,
    summarise,
    table,
)
