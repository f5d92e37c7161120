"""Occlusion augmentation of real photos: the occluder library pasted over any face photo, giving
``occluded``, ``clean``, ``mask`` (1 = occluder over the face), ``gray`` and ``contour`` as the paper
built its mask-training data from CelebAMask-HQ.

The face region comes, in order of preference, from a given mask (e.g. CelebAMask-HQ's parsing), from
68 landmarks (their hull raised to the hairline), or from the layout of an aligned crop (an ellipse).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from occface_jax.data import draw
from occface_jax.data.contour import canny_contour, to_gray
from occface_jax.data.occluders import FaceFrame, OcclusionConfig, occlude


def face_region_from_landmarks(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Face region (H, W) float32 {0, 1}: the hull of 68 landmarks (x, y px) and of the eyebrows raised
    by half the brow-to-chin height (the forehead up to the hairline)."""
    lm = np.asarray(landmarks, np.float64)
    brows = lm[17:27]
    up = lm[8] - lm[27]  # nose bridge to chin: the face's "down" with its length
    forehead = brows - 0.35 * up
    hull = cv2.convexHull(np.concatenate([lm[:17], brows, forehead]).astype(np.float32)).reshape(
        -1, 2
    )
    return (draw.fill_polygons(shape, [hull]) >= 0.5).astype(np.float32)


def aligned_face_region(shape: tuple[int, int]) -> tuple[np.ndarray, FaceFrame]:
    """Face region and frame of an aligned, centred face crop (CelebA-HQ / Deng et al. style): an
    ellipse over the middle 60% of the width and 76% of the height."""
    h, w = shape
    region = draw.fill_polygons(shape, [draw.ellipse((w * 0.5, h * 0.52), (0.3 * w, 0.38 * h))])
    frame = FaceFrame.from_box(0.2 * w, 0.2 * h, 0.8 * w, 0.9 * h)
    return (region >= 0.5).astype(np.float32), frame


def occlude_photo(
    image: np.ndarray,
    rng: np.random.Generator,
    landmarks: np.ndarray | None = None,
    face_region: np.ndarray | None = None,
    config: OcclusionConfig = OcclusionConfig(),
) -> dict[str, np.ndarray]:
    """Occluders over a face photo (H, W, 3) float32 in [0, 1], all randomness from ``rng``.

    Returns ``occluded``, ``clean`` (the input), ``mask`` and ``face_region`` (H, W) {0, 1},
    ``alpha`` (H, W) occluder opacity, ``gray`` (H, W) luma of the occluded image, ``contour`` (H, W)
    Canny (sigma 1.8) of the clean image, ``coverage`` (mask / face pixels), float32 arrays.
    """
    shape = image.shape[:2]
    has_landmarks = landmarks is not None and np.isfinite(landmarks).all()
    if has_landmarks:
        frame = FaceFrame.from_landmarks(landmarks)
        region = face_region_from_landmarks(landmarks, shape)
    else:
        region, frame = aligned_face_region(shape)
    if face_region is not None:
        region = (np.asarray(face_region) > 0.5).astype(np.float32)
    result = occlude(image, region, frame, rng, config)
    return {
        "occluded": result.occluded,
        "clean": np.asarray(image, np.float32),
        "mask": result.mask,
        "alpha": result.alpha,
        "face_region": region,
        "gray": to_gray(result.occluded),
        "contour": canny_contour(image),
        "coverage": np.float32(result.coverage),
    }


class OccludedPhotos:
    """A random-access source of occlusion-augmented photos over any photo source (e.g.
    :class:`occface_jax.data.folder.ImageFolder` with a fixed ``image_size``).

    Sample ``i`` draws its occluders from ``np.random.default_rng([seed, i])``: deterministic by index.
    The source's records must have ``image``; ``landmarks`` (NaN = none) and ``face_region`` are used
    when present, and a record's own ``mask`` (occluders already in the photo) is merged into the
    output mask. Other source fields (``path``, ``landmarks``, ``labels``) are passed through.
    """

    def __init__(
        self, source: Any, seed: int = 0, config: OcclusionConfig = OcclusionConfig()
    ) -> None:
        self.source, self.seed, self.config = source, int(seed), config

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.source[index]
        rng = np.random.default_rng([self.seed, int(index)])
        sample = occlude_photo(
            record["image"],
            rng,
            landmarks=record.get("landmarks"),
            face_region=record.get("face_region"),
            config=self.config,
        )
        extras = {k: v for k, v in record.items() if k not in ("image", "face_region")}
        if (
            "mask" in record
        ):  # the dataset's own occluders (e.g. CelebAMask-HQ eyeglasses) stay occluders
            own = np.asarray(record["mask"], np.float32) * sample["face_region"]
            sample["mask"] = np.maximum(sample["mask"], own)
        return {**extras, **sample}
