"""Backgrounds for synthetic faces: random crops of photos that scikit-image ships (no faces) and
procedural textures (value noise, gradients, stripes, checkers). Float32 (H, W, 3) RGB in [0, 1].
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from skimage import data as skimage_data


@functools.cache
def photo_backgrounds() -> tuple[np.ndarray, ...]:
    """Float32 RGB photos bundled with scikit-image (no download), none showing a face."""

    def rgb(img):
        img = np.asarray(img, np.float32) / 255.0
        return np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]

    return tuple(
        rgb(f())
        for f in (
            skimage_data.coffee,
            skimage_data.chelsea,
            skimage_data.rocket,
            skimage_data.hubble_deep_field,
            skimage_data.immunohistochemistry,
            skimage_data.colorwheel,
            skimage_data.brick,
            skimage_data.grass,
            skimage_data.gravel,
            skimage_data.coins,
            skimage_data.moon,
        )
    )


def value_noise(rng: np.random.Generator, size: tuple[int, int], octaves: int = 4) -> np.ndarray:
    """Smooth multi-octave value noise (H, W, 3) in [0, 1] with random colours per octave."""
    height, width = size
    out = np.zeros((height, width, 3), np.float32)
    weight_sum = 0.0
    for o in range(octaves):
        cells = 2 ** (o + 1)
        grid = rng.uniform(0, 1, (cells + 1, cells + 1, 3)).astype(np.float32)
        layer = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        w = 0.5**o
        out += w * layer
        weight_sum += w
    return np.clip(out / weight_sum, 0, 1)


def procedural_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A procedural texture (H, W, 3): value noise, a two-colour gradient, stripes or a checker board."""
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ys, xs = (ys + 0.5) / height, (xs + 0.5) / width
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    kind = rng.integers(4)
    angle = rng.uniform(0, np.pi)
    along = xs * np.cos(angle) + ys * np.sin(angle)
    if kind == 0:
        return value_noise(rng, size)
    if kind == 1:
        t = np.clip(along, 0, 1)[..., None]
    elif kind == 2:
        t = (0.5 + 0.5 * np.sin(along * 2 * np.pi * rng.uniform(2, 12)))[..., None]
    else:
        cells = rng.uniform(3, 12)
        across = -xs * np.sin(angle) + ys * np.cos(angle)
        t = ((np.floor(along * cells) + np.floor(across * cells)) % 2)[..., None]
    texture = c0 * (1 - t) + c1 * t
    return np.clip(texture + 0.1 * (value_noise(rng, size, 3) - 0.5), 0, 1).astype(np.float32)


def photo_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random crop (random scale, flip, colour gain) of a bundled photo, resized to ``size``."""
    photos = photo_backgrounds()
    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape[:2]
    crop = int(rng.uniform(0.35, 1.0) * min(h, w))
    y0, x0 = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
    patch = photo[y0 : y0 + crop, x0 : x0 + crop]
    if rng.uniform() < 0.5:
        patch = patch[:, ::-1]
    out = cv2.resize(np.ascontiguousarray(patch), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.clip(out * rng.uniform(0.7, 1.2, 3), 0, 1).astype(np.float32)


def random_background(
    rng: np.random.Generator, size: tuple[int, int], p_photo: float = 0.6
) -> np.ndarray:
    """A photo crop with probability ``p_photo``, else a procedural texture; (H, W, 3) float32."""
    if rng.uniform() < p_photo:
        return photo_background(rng, size)
    return procedural_background(rng, size)
