"""A plain folder of face photos as a grain random-access source, with landmarks when files sit beside.

Landmarks: ``<stem>.pts`` (iBUG) or ``<stem>.ljson`` (menpo) next to an image, read by
``occface_jax.faces.landmarks_io``; only 68-point sets are used (others count as absent).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.records import IMAGE_SUFFIXES, read_image, resize_image, scale_points
from occface_jax.faces.landmarks_io import read_landmarks

NO_LANDMARKS = np.full((68, 2), np.nan, np.float32)


def list_images(root: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Image files under ``root`` (sorted, so index i is the same file on every machine)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: no such folder of images")
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in root.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def read_landmarks68(image_path: Path) -> np.ndarray | None:
    """68 landmarks (68, 2) float32 pixels from a ``.pts``/``.ljson`` beside the image, else None."""
    for suffix in (".pts", ".ljson"):
        path = image_path.with_suffix(suffix)
        if path.is_file():
            points = read_landmarks(path)
            return points.astype(np.float32) if points.shape == (68, 2) else None
    return None


class ImageFolder:
    """Photos under ``root`` (recursive), each as a dict:

    ``image`` (H, W, 3) float32 in [0, 1] (resized to ``image_size`` (H, W) if given), ``landmarks``
    (68, 2) float32 px (NaN when absent), ``has_landmarks`` bool, ``path`` str (relative to ``root``).
    Raises :class:`RecordError` for an unreadable image (wrap with ``records.skipping`` to skip).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_size: tuple[int, int] | None = None,
        recursive: bool = True,
    ) -> None:
        self.root = Path(root)
        self.paths = list_images(self.root, recursive)
        if not self.paths:
            raise DatasetLayoutError(f"{self.root}: no image files ({', '.join(IMAGE_SUFFIXES)})")
        self.image_size = None if image_size is None else tuple(image_size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        image = read_image(path)
        try:
            landmarks = read_landmarks68(path)
        except Exception:  # a bad landmark file only loses the landmarks, never the photo
            landmarks = None
        if self.image_size is not None:
            if landmarks is not None:
                landmarks = scale_points(landmarks, image.shape[:2], self.image_size).astype(
                    np.float32
                )
            image = resize_image(image, self.image_size)
        return {
            "image": image,
            "landmarks": NO_LANDMARKS.copy() if landmarks is None else landmarks,
            "has_landmarks": landmarks is not None,
            "path": str(path.relative_to(self.root)),
        }
