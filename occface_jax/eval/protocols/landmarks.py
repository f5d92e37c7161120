"""68-point landmark accuracy of the reconstruction on 300-W / AFLW2000-3D layouts.

Every image under ROOT (any depth) with a sibling annotation is one sample: iBUG ``.pts`` (300-W,
menpo; 1-based pixels), menpo's ``.ljson``, or AFLW2000-3D's ``.mat`` (``pt3d_68`` (3, 68) or
``pt2d`` (2, 68), 0-based pixels). With the option ``occluders=1`` each image is scored a second
time with one of the data engine's occluders pasted over the face (placed from the true
landmarks, 15-35% of the face, seeded by the file name: as ``experiments/menpo_nme.py``), under the
subset ``<subset> occluded``. The face is detected (the detection that overlaps the box around
the true landmarks; the landmarks inside that box when none does) and reconstructed; the fitted model's projected 68
landmarks are compared with the truth: NME normalised by the outer-eye-corner distance (300-W's
inter-ocular, all 68 and the inner 51; also of the detector's landmarks the fit starts from) and by
sqrt(w h) of the true landmarks' box (AFLW2000-3D's),
mean per subset (the first folder under ROOT, e.g. ``clean/`` and ``occluded/``, or 300-W's
``helen``, ``ibug``) and overall. Metrics: ``occface_jax.eval.metrics.landmarks``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from occface_jax.data.augment import occlude_photo
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.errors import OccfaceError
from occface_jax.eval.metrics.landmarks import INNER_POINTS, box_nme, landmark_nme
from occface_jax.eval.protocols.runner import (
    Predict,
    Protocol,
    Sample,
    by_subset,
    layout_error,
    markdown,
    mean_std,
    safe_name,
)
from occface_jax.faces.landmarks_io import read_landmarks
from occface_jax.io import images as imageio

LAYOUT = (
    "ROOT/[<subset>/...]<name>.<jpg|png> beside <name>.pts (iBUG 68), <name>.ljson or "
    "<name>.mat (AFLW2000-3D)"
)
ANNOTATIONS = (".pts", ".ljson", ".mat")
OCCLUSION = OcclusionConfig(count=(1, 1), coverage=(0.15, 0.35))


def read_truth(path: Path) -> np.ndarray:
    """The 68 true landmarks (68, 2), project pixels (centres at +0.5)."""
    if path.suffix != ".mat":
        points = read_landmarks(path)
    else:
        import scipy.io  # only AFLW2000-3D's annotations need it

        try:
            mat = scipy.io.loadmat(path)
        except (OSError, ValueError) as err:
            raise OccfaceError(f"{path}: unreadable .mat ({err})") from err
        key = next((k for k in ("pt3d_68", "pt2d") if k in mat), None)
        if key is None:
            raise OccfaceError(f"{path}: no pt3d_68 or pt2d array (AFLW2000-3D layout)")
        points = np.asarray(mat[key], np.float64)[:2].T + 0.5
    if points.shape != (68, 2):
        raise OccfaceError(f"{path}: {len(points)} landmarks, expected 68 (iBUG order)")
    return points


def samples(root: Path, occluders: str = "0") -> list[Sample]:
    occluded = str(occluders).lower() in ("1", "true", "yes")
    out = []
    for image in sorted(p for p in root.rglob("*") if p.suffix.lower() in imageio.IMAGE_SUFFIXES):
        note = next(
            (image.with_suffix(s) for s in ANNOTATIONS if image.with_suffix(s).is_file()), None
        )
        if note is None:
            continue
        rel = image.relative_to(root)
        subset = rel.parts[0] if len(rel.parts) > 1 else "images"
        data = {"image": str(image), "truth": str(note), "occluded": False}
        out.append(Sample(str(rel), subset, data))
        if occluded:
            out.append(Sample(f"{rel} occluded", f"{subset} occluded", {**data, "occluded": True}))
    if not out:
        raise layout_error(root, "no image with a .pts or .mat annotation beside it", LAYOUT)
    return out


def truth_box(points: np.ndarray) -> np.ndarray:
    """A detector-like square box (x0, y0, x1, y1) around true landmarks (10% margin)."""
    lo, hi = points.min(0), points.max(0)
    centre, side = (lo + hi) / 2, (hi - lo).max() * 1.1
    return np.concatenate([centre - side / 2, centre + side / 2])


def occluded_copy(image: Path, truth: np.ndarray, folder: Path) -> tuple[Path, float]:
    """(the photo with an occluder pasted over the face, saved into ``folder``; its scale to the
    original's pixels). Seeded by the file name, so every run pastes the same one."""
    loaded = imageio.load_image(image)
    pasted = occlude_photo(
        loaded.pixels,
        np.random.default_rng(sum(map(ord, image.stem))),
        landmarks=truth * loaded.scale,
        config=OCCLUSION,
    )
    path = folder / f"{safe_name(image.stem)}_occluded.png"
    return imageio.save_image(path, pasted["occluded"]), loaded.scale


def score(sample: Sample, predict: Predict, samples_dir: Path) -> dict[str, Any]:
    truth = read_truth(Path(sample.data["truth"]))
    image, scale = Path(sample.data["image"]), 1.0
    if sample.data["occluded"]:
        image, scale = occluded_copy(image, truth, samples_dir)
    predicted = predict(image, truth_box(truth) * scale)
    fitted = predicted.landmarks2d / scale
    out = {
        "nme_io": float(landmark_nme(fitted, truth)),
        "nme_io_inner": float(landmark_nme(fitted, truth, points=INNER_POINTS)),
        "nme_box": float(box_nme(fitted, truth)),
    }
    if predicted.detected2d is not None:
        out["nme_io_detector"] = float(landmark_nme(predicted.detected2d / scale, truth))
    return out


METRICS = ("nme_io", "nme_io_inner", "nme_box", "nme_io_detector")


def summarise(records: list[dict[str, Any]], samples_dir: Path) -> dict[str, Any]:
    return {
        "subsets": {
            subset: {m: mean_std([r.get(m) for r in rs]) for m in METRICS}
            for subset, rs in by_subset(records)
        }
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        (subset, m["nme_io"]["n"], *(m[k]["mean"] for k in METRICS))
        for subset, m in results["subsets"].items()
    ]
    return markdown(
        (
            "subset",
            "images",
            "NME inter-ocular",
            "NME inter-ocular, inner 51",
            "NME box",
            "NME detector (inter-ocular)",
        ),
        rows,
        "Fitted model's projected landmarks against the truth; NME = mean point error / "
        "outer-eye-corner distance, or / sqrt(w h) of the true landmarks' box; the detector's: "
        "the 68 landmarks the fit starts from.",
        digits=4,
    )


PROTOCOL = Protocol(
    "landmarks",
    "68-point landmark NME (300-W inter-ocular, AFLW2000-3D box)",
    LAYOUT,
    samples,
    score,
    summarise,
    table,
)
