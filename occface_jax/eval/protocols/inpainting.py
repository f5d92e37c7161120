"""De-occlusion as inpainting: L1 / PSNR / SSIM of the repainted photo, by mask ratio.

Each clean photo ``images/<name>`` is paired with ``masks/<name>.png`` (white = hole, resized to
the photo by nearest neighbour). The hole is filled (``fill=grey``: 0.5, or ``noise``: uniform,
seeded by the name), the result reconstructed like any photo (``occface reconstruct``'s
``deoccluded.png``: the occluded face pixels the fit finds are repainted from the model) and
compared with the clean photo over the whole image (``eval.metrics.image``); the holed input's own
scores are the baseline. Reported per mask-ratio bin (the share of the image the hole covers:
0-10%, 10-20%, ... 50-60%, 60-100%, the usual inpainting bins) and overall.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from occface_jax.errors import OccfaceError
from occface_jax.eval.metrics.image import l1_error, psnr, ssim
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
from occface_jax.io import images as imageio

LAYOUT = "ROOT/images/<name>.<png|jpg> (clean photos) and ROOT/masks/<name>.png (white = hole)"
EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0)
METRICS = ("l1", "psnr", "ssim", "input_l1", "input_psnr", "input_ssim")


def ratio_bin(ratio: float) -> str:
    """The bin label ("10-20%") of a mask ratio in [0, 1]."""
    k = int(np.clip(np.searchsorted(EDGES, ratio, side="left") - 1, 0, len(EDGES) - 2))
    return f"{round(100 * EDGES[k])}-{round(100 * EDGES[k + 1])}%"


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The hole (H, W) bool of a mask file, resized to ``shape`` (nearest)."""
    gray = imageio.load_image(path, min_side=1).pixels.mean(axis=-1)
    if gray.shape != shape:
        gray = cv2.resize(gray, shape[::-1], interpolation=cv2.INTER_NEAREST)
    return gray > 0.5


def samples(root: Path, fill: str = "grey") -> list[Sample]:
    images, masks = root / "images", root / "masks"
    for folder in (images, masks):
        if not folder.is_dir():
            raise layout_error(folder, "no such folder", LAYOUT)
    if fill not in ("grey", "noise"):
        raise OccfaceError(f"inpainting: fill={fill!r}, one of grey, noise")
    out = []
    for image in sorted(p for p in images.iterdir() if p.suffix.lower() in imageio.IMAGE_SUFFIXES):
        mask = masks / f"{image.stem}.png"
        if not mask.is_file():
            raise layout_error(mask, f"no mask for {image.name}", LAYOUT)
        out.append(Sample(image.stem, "", {"image": str(image), "mask": str(mask), "fill": fill}))
    if not out:
        raise layout_error(images, "no image", LAYOUT)
    return out


def _scores(image: np.ndarray, truth: np.ndarray, prefix: str = "") -> dict[str, float]:
    return {
        f"{prefix}l1": float(l1_error(image, truth)),
        f"{prefix}psnr": float(psnr(image, truth)),
        f"{prefix}ssim": float(ssim(image, truth)),
    }


def score(sample: Sample, predict: Predict, samples_dir: Path) -> dict[str, Any]:
    loaded = imageio.load_image(sample.data["image"])
    clean = loaded.pixels
    hole = read_mask(Path(sample.data["mask"]), clean.shape[:2])
    if sample.data["fill"] == "noise":
        rng = np.random.default_rng(sum(map(ord, sample.id)))
        filler = rng.uniform(size=clean.shape).astype(np.float32)
    else:
        filler = np.full_like(clean, 0.5)
    holed = np.where(hole[..., None], filler, clean)
    path = imageio.save_image(samples_dir / f"{safe_name(sample.id)}_input.png", holed)
    holed = imageio.load_image(path).pixels  # as the predictor sees it (8-bit)
    repainted = predict(path, None).deoccluded
    if repainted is None:
        raise OccfaceError("the predictor returns no de-occluded image")
    if repainted.shape != clean.shape:
        repainted = cv2.resize(repainted, clean.shape[1::-1], interpolation=cv2.INTER_AREA)
    ratio = float(hole.mean())
    return {
        "ratio": ratio,
        "bin": ratio_bin(ratio),
        **_scores(repainted, clean),
        **_scores(holed, clean, "input_"),
    }


def summarise(records: list[dict[str, Any]], samples_dir: Path) -> dict[str, Any]:
    bins = [ratio_bin((lo + hi) / 2) for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True)]
    return {
        "bins": {
            label: {m: mean_std([r[m] for r in rs]) for m in METRICS}
            for label, rs in by_subset(records, "bin", bins)
        }
    }


def table(results: dict[str, Any]) -> str:
    rows = [
        (label, m["l1"]["n"], *(m[k]["mean"] for k in METRICS))
        for label, m in results["bins"].items()
    ]
    return markdown(
        ("mask ratio", "images", "L1", "PSNR (dB)", "SSIM", "input L1", "input PSNR", "input SSIM"),
        rows,
        "Whole-image scores of the de-occluded photo against the clean one; 'input': the holed "
        "photo itself.",
        digits=4,
    )


PROTOCOL = Protocol(
    "inpainting",
    "de-occlusion L1 / PSNR / SSIM by mask ratio",
    LAYOUT,
    samples,
    score,
    summarise,
    table,
)
