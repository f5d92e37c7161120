"""Fitting accuracy on synthetic faces with ground truth, clean vs occluded (issue: photo to 3D).

Faces are rendered from the default model by the data engine (``occface_jax.data.synth``: random
identity, sparse expression, albedo, SH light, pose; background photo or texture; occluders from the
occluder library covering 15-40% of the face), at 224 px with Deng et al.'s camera. Landmarks given
to the fit are the true projected 68 landmarks plus Gaussian noise (sigma 1.5 px) — the detector's
own error is measured on real photos in ``menpo_nme.py``.

Conditions: clean image (robust fit on); occluded image with the robust fit (occluder estimated),
without it (plain fit), with the true occlusion mask given (an upper bound: the data engine's mask,
occluder alpha >= 0.5), and with every face pixel the occluder touches left out (alpha > 0: tinted or
clear lenses too; "see-through mask"). With
``--checkpoints DIR`` (the ``--workdir`` of ``occface train mask``) also: the occlusion network's mask
confirmed and completed by the residual estimate (as ``occface reconstruct --checkpoints``), and
the network's mask alone.
A second table gives the IoU of each condition's final occlusion mask with the true one.
Error: mean per-vertex distance (mm) over the face region, after rigid alignment (rotation +
translation, no scale) of the fitted shape to the true one. Prints a table; ``--out`` writes it.

    python experiments/synthetic_fit.py --n 12 --out experiments/results/synthetic_fit.md
"""

from __future__ import annotations

import argparse
import platform
import time

import jax.numpy as jnp
import numpy as np
from _tables import emit  # experiments/_tables.py

from occface_jax.cli import _parse_overrides
from occface_jax.configs_loader import load_config
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.data.synth import SynthConfig, SyntheticFaces
from occface_jax.eval.segmentation import mask_iou
from occface_jax.eval.surface import apply_similarity, similarity_transform
from occface_jax.fit import Fitter
from occface_jax.morphable import geometry, load_model

#: Conditions whose occlusion mask is given, not estimated (no IoU to report).
GIVEN_MASKS = ("occluded, true mask", "occluded, see-through mask")


def rigid_align_error(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean distance (same units) after the best rotation + translation of ``pred`` onto ``true``."""
    moved = apply_similarity(similarity_transform(pred, true, scale=False), pred)
    return float(np.linalg.norm(moved - true, axis=1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=12, help="number of synthetic faces")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variant", default="", help="configs/fit.py variant")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configs/fit.py value",
    )
    parser.add_argument("--checkpoints", help="trained networks (mask/) to evaluate as well")
    parser.add_argument(
        "--flip-average",
        action="store_true",
        help="average N_mask's map over the crop and its mirror image",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="CONDITION",
        help="run only these conditions (repeatable; 'clean' is always run), e.g. --only "
        "'occluded, robust'",
    )
    parser.add_argument("--out", help="write the table (markdown) here")
    args = parser.parse_args()

    full = load_model()
    face = full.face_only()
    config = load_config("fit", args.variant)
    _parse_overrides(args.set, config)
    synth = SyntheticFaces(
        full,
        SynthConfig(
            image_size=224,
            focal_jitter=0.0,
            max_angles_deg=(12.0, 30.0, 8.0),
            translation_dm=(0.05, 0.05, 0.4),
            occlusion=OcclusionConfig(coverage=(0.15, 0.4), count=(1, 1)),
        ),
        seed=args.seed,
    )
    plain_cfg = config.copy_and_resolve_references()
    plain_cfg.robust = False
    fitters = {"robust": Fitter(face, config, full), "plain": Fitter(face, plain_cfg, full)}
    predictor = None
    if args.checkpoints:
        from occface_jax.networks import MaskPredictor

        predictor = MaskPredictor.from_checkpoints(args.checkpoints, args.flip_average)
    jface = face.to_jax()
    region = np.asarray(face.face_region)
    rows, times, ious = [], [], []
    for i in range(args.n):
        s = synth[i]
        rng = np.random.default_rng([args.seed, i, 1])
        lms = s["landmarks"] + rng.normal(0, 1.5, s["landmarks"].shape)
        true_c = synth.layout.split(jnp.asarray(s["coeffs"]))
        truth = np.asarray(geometry.shape(jface, true_c["id"], true_c["exp"]))[region]

        def err(result, truth=truth) -> float:
            fitted = geometry.shape(
                jface, jnp.asarray(result.coeffs["id"]), jnp.asarray(result.coeffs["exp"])
            )
            return rigid_align_error(np.asarray(fitted)[region], truth)

        # Every face pixel the occluder touches, see-through parts (alpha < 0.5: clear or tinted
        # lenses) included; the data engine's ``mask`` keeps alpha >= 0.5 only.
        see_through = ((s["alpha"] > 0) & (s["face_region"] > 0.5)).astype(np.float32)
        start = time.perf_counter()
        predicted = predictor(s["occluded"]) if predictor is not None else None
        # condition -> (fitter, image, keyword arguments)
        runs = {
            "clean": ("robust", "clean", {}),
            "occluded, robust": ("robust", "occluded", {}),
            "occluded, plain": ("plain", "occluded", {}),
            "occluded, true mask": ("robust", "occluded", {"occlusion": s["mask"]}),
            "occluded, see-through mask": ("robust", "occluded", {"occlusion": see_through}),
        }
        if predictor is not None:
            runs["occluded, N_mask + robust"] = ("robust", "occluded", {"predicted": predicted})
            runs["occluded, N_mask only"] = ("plain", "occluded", {"predicted": predicted})
        wanted = ["clean"] + (args.only or list(runs))
        fits = {
            k: fitters[fitter](s[image], lms, **kwargs)
            for k, (fitter, image, kwargs) in runs.items()
            if k in wanted
        }
        row = {"coverage": float(s["coverage"])}
        row.update({k: err(v) for k, v in fits.items()})
        row["mean face"] = rigid_align_error(np.asarray(jface.mean_shape)[region], truth)
        true_mask = jnp.asarray(s["mask"])
        ious.append(
            {
                k: float(mask_iou(jnp.asarray(v.occlusion), true_mask))
                for k, v in fits.items()
                if k.startswith("occluded") and k not in GIVEN_MASKS and "plain" not in k
            }
        )
        if predictor is not None:
            ious[-1]["N_mask output (> 0.5)"] = float(mask_iou(jnp.asarray(predicted), true_mask))
        times.append(time.perf_counter() - start)
        rows.append(row)
        print(f"face {i}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)

    keys = [k for k in rows[0] if k != "coverage"]
    lines = [
        f"Synthetic fits: {args.n} faces, config variant '{args.variant or 'default'}'"
        f"{' with ' + ', '.join(args.set) if args.set else ''} "
        f"({config.landmark_steps} landmark + {config.steps} photometric steps), "
        f"mean occluder coverage {np.mean([r['coverage'] for r in rows]):.0%}; "
        f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}.",
        "",
        "| condition | mean error (mm) | median (mm) | vs clean |",
        "| --- | --- | --- | --- |",
    ]
    clean = np.mean([r["clean"] for r in rows])
    for k in keys:
        vals = np.array([r[k] for r in rows])
        lines.append(
            f"| {k} | {vals.mean():.2f} | {np.median(vals):.2f} | {vals.mean() / clean - 1:+.0%} |"
        )
    lines += [
        "",
        "Occlusion masks: IoU with the true mask (face pixels of the 224 crop), mean over faces.",
        "",
        "| mask | mean IoU |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {np.mean([r[k] for r in ious]):.3f} |" for k in ious[0]]
    lines.append("")
    lines.append(
        f"Seconds per face for all {len(keys) - 1} fits together (after compilation): "
        f"median {np.median(times[1:] or times):.1f}."
    )
    emit("Synthetic ground-truth fits", lines, args.out)


if __name__ == "__main__":
    main()
