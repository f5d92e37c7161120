"""LFW face verification from the reconstruction's identity coefficients (the seed paper's Table 2).

Every image of ``pairs.txt`` (View 2: 10 folds of 300 matched and 300 mismatched pairs) is
reconstructed once (one sample; its identity coefficients in ``OUT/samples/<id>.npy``); a pair's
score is the cosine similarity of its two images' coefficients. Accuracy: for each fold, the
threshold of best accuracy on the other nine, applied to this one; mean +/- std over the folds.
Also 100% - EER and the area under the ROC curve over all pairs (``eval.metrics.verification``),
and the ROC curve itself (``results.json``; drawn in ``OUT/roc.png``). A pair whose image failed
(no face) is left out and counted (``pairs_missing``).

With ``occluders=KINDS`` (kinds of ``data.occluders``, comma-separated, or ``all``) every image is
reconstructed a second time with one occluder pasted over its face (placed from the clean
reconstruction's detected landmarks, 10-45% of the face, seeded by the image's name), as the seed
paper's occluded LFW, and the same numbers are reported for the occluded images (``occluded``;
the occluded ROC in ``OUT/roc_occluded.png``). An occluded image without a face drops its pairs
from the occluded scores only.

Layout: ``occface_jax.data.lfw.LFWPairs`` (``ROOT/pairs.txt``,
``ROOT/lfw/<Name>/<Name>_<nnnn>.jpg``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from occface_jax.data.augment import occlude_photo
from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.lfw import LFWPairs
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.errors import OccfaceError
from occface_jax.eval.metrics.verification import (
    cosine_similarity,
    equal_error_rate,
    fold_accuracies,
    roc_auc,
    roc_curve,
)
from occface_jax.eval.protocols.runner import (
    Predict,
    Protocol,
    Sample,
    layout_error,
    markdown,
    occluder_kinds,
    safe_name,
)
from occface_jax.io import images as imageio

LAYOUT = "ROOT/pairs.txt (View 2) and ROOT/lfw/<Name>/<Name>_<nnnn>.jpg (or ROOT/<Name>/...)"
OCCLUDED = "_occluded"  # the occluded image's identity: OUT/samples/<id>_occluded.npy


def _pairs(root: Path, pairs_file: str) -> LFWPairs:
    try:
        return LFWPairs(root, pairs_file or None)
    except DatasetLayoutError as err:
        raise layout_error(root, str(err), LAYOUT) from err


def _image_id(name: str, number: int) -> str:
    return f"{name}_{number:04d}"


def samples(root: Path, pairs_file: str = "", occluders: str = "") -> list[Sample]:
    """One sample per distinct image of the pairs."""
    kinds = occluder_kinds("lfw", occluders)
    dataset = _pairs(root, pairs_file)
    seen: dict[str, Sample] = {}
    for pair in dataset.pairs:
        for name, number in ((pair.name_a, pair.number_a), (pair.name_b, pair.number_b)):
            key = _image_id(name, number)
            if key in seen:
                continue
            path = dataset.image_path(name, number)
            if not path.is_file():
                raise layout_error(path, "missing image of pairs.txt", LAYOUT)
            data = {
                "image": str(path),
                "root": str(root),
                "pairs_file": pairs_file,
                "occluders": list(kinds),
            }
            seen[key] = Sample(key, "images", data)
    return list(seen.values())


def _identity(predicted: Any) -> np.ndarray:
    if predicted.identity is None:
        raise OccfaceError("the predictor returns no identity coefficients")
    return np.asarray(predicted.identity, np.float64).ravel()


def score(sample: Sample, predict: Predict, samples_dir: Path) -> dict[str, Any]:
    """The image's identity coefficients; with occluders, also those of the image occluded (its
    failure, e.g. no face found, is recorded in ``occluded_error`` and drops only its pairs)."""
    image = Path(sample.data["image"])
    clean = predict(image, None)
    np.save(samples_dir / f"{safe_name(sample.id)}.npy", _identity(clean))
    out: dict[str, Any] = {"root": sample.data["root"], "pairs_file": sample.data["pairs_file"]}
    kinds = tuple(sample.data.get("occluders", ()))
    if kinds:
        pixels = imageio.load_image(image, min_side=1).pixels
        landmarks = clean.detected2d
        pasted = occlude_photo(
            pixels,
            np.random.default_rng(sum(map(ord, sample.id))),
            landmarks=None if landmarks is None else np.asarray(landmarks, np.float64),
            config=OcclusionConfig(kinds=kinds, count=(1, 1), coverage=(0.1, 0.45)),
        )
        try:
            identity = _identity(predict(pasted["occluded"], None))
        except OccfaceError as err:
            out["occluded_error"] = str(err).splitlines()[0]
        else:
            np.save(samples_dir / f"{safe_name(sample.id)}{OCCLUDED}.npy", identity)
            out["occluded_coverage"] = float(pasted["coverage"])
    return out


def summarise(records: list[dict[str, Any]], samples_dir: Path) -> dict[str, Any]:
    """The verification numbers of the clean images and, when they were scored, of the occluded
    ones (``occluded``)."""
    if not records:
        return {"pairs": 0, "pairs_missing": None, "accuracy": None}
    out = verification(records, samples_dir, "")
    if any("occluded_coverage" in r or "occluded_error" in r for r in records):
        scored = [r for r in records if "occluded_coverage" in r]
        out["occluded"] = verification(records, samples_dir, OCCLUDED, scored)
    return out


def verification(
    records: list[dict[str, Any]],
    samples_dir: Path,
    suffix: str,
    scored_records: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Pair scores from ``OUT/samples/<id><suffix>.npy`` of the ``scored_records`` (default: all)
    -> fold accuracies, 100% - EER, AUC, the ROC (drawn in ``OUT/roc<suffix>.png``)."""
    dataset = _pairs(Path(records[0]["root"]), records[0]["pairs_file"])
    scored = {r["id"] for r in (records if scored_records is None else scored_records)}
    scores, same, folds, missing = [], [], [], 0
    for pair in dataset.pairs:
        a, b = _image_id(pair.name_a, pair.number_a), _image_id(pair.name_b, pair.number_b)
        if a not in scored or b not in scored:
            missing += 1
            continue
        ia = np.load(samples_dir / f"{safe_name(a)}{suffix}.npy")
        ib = np.load(samples_dir / f"{safe_name(b)}{suffix}.npy")
        scores.append(float(cosine_similarity(ia, ib)))
        same.append(pair.same)
        folds.append(pair.fold)
    scores_a, same_a = np.asarray(scores), np.asarray(same, bool)
    if len(scores_a) == 0 or same_a.all() or not same_a.any():
        return {"pairs": len(scores), "pairs_missing": missing, "accuracy": None}
    accuracies, thresholds = fold_accuracies(scores_a, same_a, np.asarray(folds))
    fpr, tpr = roc_curve(scores_a, same_a)
    imageio.save_image(samples_dir.parent / f"roc{suffix}.png", roc_picture(fpr, tpr))
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 201)).astype(int))
    return {
        "pairs": len(scores),
        "pairs_missing": missing,
        "accuracy": {
            "mean": float(accuracies.mean()),
            "std": float(accuracies.std()),
            "folds": accuracies.tolist(),
            "thresholds": thresholds.tolist(),
        },
        "one_minus_eer": 1.0 - equal_error_rate(scores_a, same_a),
        "auc": roc_auc(scores_a, same_a),
        "roc": {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()},
    }


def roc_picture(fpr: np.ndarray, tpr: np.ndarray, size: int = 320) -> np.ndarray:
    """The ROC curve drawn as an (S, S, 3) float image: white, the chance diagonal grey, the curve
    black, false positive rate to the right, true positive rate up."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    m = size // 10  # margin

    def xy(x: float, y: float) -> tuple[float, float]:
        return m + x * (size - 2 * m), size - m - y * (size - 2 * m)

    draw.rectangle([xy(0, 1), xy(1, 0)], outline=(0, 0, 0))
    draw.line([xy(0, 0), xy(1, 1)], fill=(170, 170, 170))
    draw.line(
        [xy(float(a), float(b)) for a, b in zip(fpr, tpr, strict=True)], fill=(0, 0, 0), width=2
    )
    return np.asarray(image, np.float32) / 255.0


def table(results: dict[str, Any]) -> str:
    def row(condition: str, r: dict[str, Any]) -> tuple:
        acc = r["accuracy"]
        return (
            condition,
            r["pairs"],
            r["pairs_missing"],
            "-" if acc is None else f"{100 * acc['mean']:.2f} ± {100 * acc['std']:.2f}",
            "-" if acc is None else f"{100 * r['one_minus_eer']:.2f}",
            "-" if acc is None else f"{100 * r['auc']:.2f}",
        )

    rows = [row("clean", results)]
    if "occluded" in results:
        rows.append(row("occluded", results["occluded"]))
    return markdown(
        ("images", "pairs", "pairs missing", "accuracy (%)", "100% - EER (%)", "AUC (%)"),
        rows,
        "Cosine similarity of identity coefficients; threshold per fold chosen on the other folds. "
        "Published (seed paper, Table 2, as the issue cites it; see the paper for what each "
        "number is): 89.40 / 89.36 / 95.90 % clean, 83.89 / 85.25 / 89.75 % occluded.",
    )


PROTOCOL = Protocol(
    "lfw",
    "LFW verification from identity coefficients (View 2, 10 folds)",
    LAYOUT,
    samples,
    score,
    summarise,
    table,
)
