"""CelebAMask-HQ in its published layout, parts merged into face / hair / occluder classes.

Layout (Lee et al. 2020)::

    ROOT/CelebA-HQ-img/<id>.jpg                         1024 x 1024 photos, id 0..29999
    ROOT/CelebAMask-HQ-mask-anno/<k>/<id:05d>_<part>.png 512 x 512 binary part masks, k = id // 2000

A part file is absent when the part is not visible. Classes (a later class wins where parts overlap):
0 background (and neck, cloth, ears, jewellery), 1 face (skin, brows, eyes, nose, mouth, lips),
2 hair, 3 occluder (eyeglasses ``eye_g``, ``hat``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from occface_jax.data.errors import DatasetLayoutError, RecordError
from occface_jax.data.records import read_image, resize_image

IMAGE_DIR = "CelebA-HQ-img"
MASK_DIR = "CelebAMask-HQ-mask-anno"
IDS_PER_FOLDER = 2000
FACE_PARTS = ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth", "u_lip", "l_lip")
HAIR_PARTS = ("hair",)
OCCLUDER_PARTS = ("eye_g", "hat")
CLASS_NAMES = ("background", "face", "hair", "occluder")


def part_path(root: Path, image_id: int, part: str) -> Path:
    """Where the mask of ``part`` of image ``image_id`` lives in the published layout."""
    return root / MASK_DIR / str(image_id // IDS_PER_FOLDER) / f"{image_id:05d}_{part}.png"


class CelebAMaskHQ:
    """CelebAMask-HQ records: ``image`` (S, S, 3) float32, ``labels`` (S, S) int32 in 0..3 (see module
    doc), ``face_region`` (face or occluder on it, float32 {0, 1}), ``mask`` (occluder, float32 {0, 1}),
    ``id`` int. ``image_size`` S defaults to the masks' 512; the image is resized to it."""

    def __init__(self, root: str | os.PathLike[str], image_size: int = 512) -> None:
        self.root = Path(root)
        image_dir = self.root / IMAGE_DIR
        if not image_dir.is_dir() or not (self.root / MASK_DIR).is_dir():
            raise DatasetLayoutError(
                f"{self.root}: expected CelebAMask-HQ folders {IMAGE_DIR}/ and {MASK_DIR}/ inside"
            )
        ids = [int(p.stem) for p in image_dir.iterdir() if re.fullmatch(r"\d+", p.stem)]
        if not ids:
            raise DatasetLayoutError(f"{image_dir}: no <id>.jpg images")
        self.ids = sorted(ids)
        self.image_size = int(image_size)

    def __len__(self) -> int:
        return len(self.ids)

    def _part(self, image_id: int, part: str) -> np.ndarray | None:
        path = part_path(self.root, image_id, part)
        if not path.is_file():
            return None
        try:
            with Image.open(path) as img:
                mask = np.asarray(img.convert("L"))
        except OSError as err:
            raise RecordError(f"{path}: unreadable part mask ({err})") from err
        mask = resize_image((mask > 127).astype(np.float32), (self.image_size, self.image_size))
        return mask >= 0.5

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id = self.ids[index]
        image = read_image(self.root / IMAGE_DIR / f"{image_id}.jpg")
        size = (self.image_size, self.image_size)
        labels = np.zeros(size, np.int32)
        found = 0
        for cls, parts in ((1, FACE_PARTS), (2, HAIR_PARTS), (3, OCCLUDER_PARTS)):
            for part in parts:
                mask = self._part(image_id, part)
                if mask is not None:
                    labels[mask] = cls
                    found += 1
        if found == 0:
            raise RecordError(f"image {image_id}: no part masks under {self.root / MASK_DIR}")
        face = (labels == 1) | (labels == 3)
        return {
            "image": resize_image(image, size),
            "labels": labels,
            "face_region": face.astype(np.float32),
            "mask": (labels == 3).astype(np.float32),
            "id": image_id,
        }
