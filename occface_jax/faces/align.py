"""Deng et al. (2019) alignment: 5 landmarks -> scale + translation -> a 224x224 crop, with the forward
and inverse maps so every later output can be put back onto the original photo.

Deep3DFaceRecon (util/preprocess.py, ``align_img``) fits an affine camera to the 5 points (eye centres,
nose tip, mouth corners) against a 3D template by least squares (``POS``), takes the mean norm of its
two rows as the scale ``s0``, zooms the image by ``rescale_factor / s0`` (102) and crops 224x224 centred
on where the template origin projects. There is no rotation. Deng rounds the zoomed image size and
crop corner to integers; here the map is the exact similarity (differences under one pixel).

Template: Deng's ``similarity_Lm3D_all.mat`` (BFM landmarks) is not redistributable, so the 5-point
template is derived from the default open model (ICT-FaceKit, ``../shared/models/ict_face_default.npz``):
``mean_shape[landmarks68] / 100`` (mm -> dm, BFM/Deng units), eye centres = mean of the eye corners
(36, 39) and (42, 45), nose tip 30, mouth corners 48 and 54, origin at the face-region centroid. Its
scale matches Deng's (outer-eye distance 0.892 vs 0.863 dm, see the model's PROVENANCE.md);
``tests/faces/test_align.py`` recomputes it from the model file. Axes: x = subject's left, y = up.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from occface_jax.faces.detect import landmarks_to_5

# Derived from ict_face_default.npz as described above (decimetres, x = subject's left, y = up, z out).
TEMPLATE5_DM = np.array(
    [
        [-0.3151384, 0.2870069, -0.0390809],
        [0.3151546, 0.2870303, -0.0390919],
        [0.0000001, -0.0065999, 0.3778961],
        [-0.2534889, -0.3991511, 0.0897361],
        [0.2534891, -0.3991511, 0.0897361],
    ]
)
TARGET_SIZE = 224
RESCALE_FACTOR = 102.0


def pos_fit(points: np.ndarray, template: np.ndarray = TEMPLATE5_DM) -> tuple[np.ndarray, float]:
    """Deng's POS: least-squares affine camera from the 3D template (P, 3) to image points (P, 2)
    (y down); returns the image position (2,) of the template origin and the mean row norm ``s0``
    (pixels per template unit)."""
    n = len(points)
    design = np.zeros((2 * n, 8))
    design[0::2, :3], design[0::2, 3] = template, 1.0
    design[1::2, 4:7], design[1::2, 7] = template, 1.0
    solution = np.linalg.lstsq(design, np.asarray(points, np.float64).reshape(-1), rcond=None)[0]
    scale = 0.5 * (np.linalg.norm(solution[:3]) + np.linalg.norm(solution[4:7]))
    return np.array([solution[3], solution[7]]), float(scale)


def deng_transform(
    landmarks: np.ndarray,
    target_size: int = TARGET_SIZE,
    rescale_factor: float = RESCALE_FACTOR,
    template: np.ndarray = TEMPLATE5_DM,
) -> np.ndarray:
    """(2, 3) affine map from original-photo coordinates to the aligned crop, from 68 or 5 landmarks."""
    points = np.asarray(landmarks, np.float64)
    if points.shape == (68, 2):
        points = landmarks_to_5(points)
    if points.shape != (5, 2):
        raise ValueError(f"deng_transform needs (68, 2) or (5, 2) landmarks, got {points.shape}")
    origin, s0 = pos_fit(points, template)
    scale = rescale_factor / s0
    centre = target_size / 2.0
    return np.array(
        [[scale, 0.0, centre - scale * origin[0]], [0.0, scale, centre - scale * origin[1]]]
    )


def invert(transform: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine map (numpy)."""
    linear = np.linalg.inv(transform[:, :2])
    return np.concatenate([linear, -linear @ transform[:, 2:]], axis=1)


def map_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine map to (N, 2) points (numpy)."""
    return np.asarray(points) @ transform[:, :2].T + transform[:, 2]


def warp_image(
    image: np.ndarray, transform: np.ndarray, out_size: tuple[int, int], border_value: float = 0.0
) -> np.ndarray:
    """Resample ``image`` (H, W, C) under ``transform`` (source -> output, project convention) into an
    (out_h, out_w, C) image; bilinear, Gaussian pre-filtered when shrinking (anti-aliasing)."""
    scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    source = np.asarray(image)
    if scale < 1.0:
        sigma = 0.5 * np.sqrt(1.0 / scale**2 - 1.0)
        source = cv2.GaussianBlur(source, (0, 0), sigmaX=sigma, sigmaY=sigma)
    # OpenCV's matrices act on pixel indices (centres at integers): shift by half a pixel.
    index_map = transform.copy()
    index_map[:, 2] += 0.5 * transform[:, :2].sum(axis=1) - 0.5
    out_h, out_w = out_size
    return cv2.warpAffine(
        source,
        index_map,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border_value,
    )


@dataclass(frozen=True)
class AlignedFace:
    """A Deng-aligned crop: ``image`` (S, S, C), ``transform`` original -> crop and ``inverse`` crop ->
    original (2, 3), ``landmarks`` (N, 2) in crop coordinates, ``original_shape`` (H, W)."""

    image: np.ndarray
    transform: np.ndarray
    inverse: np.ndarray
    landmarks: np.ndarray
    original_shape: tuple[int, int]

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map crop-coordinate points (N, 2) back onto the original photo."""
        return map_points(self.inverse, points)

    def paste_back(self, crop_output: np.ndarray) -> np.ndarray:
        """Warp an output in crop space (S, S, ...) (mask, rendering) onto the original photo's grid."""
        return warp_image(crop_output, self.inverse, self.original_shape)


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    target_size: int = TARGET_SIZE,
    rescale_factor: float = RESCALE_FACTOR,
) -> AlignedFace:
    """Deng et al.'s 224x224 crop of ``image`` (H, W, C) from its 68 or 5 landmarks (x, y)."""
    transform = deng_transform(landmarks, target_size, rescale_factor)
    crop = warp_image(image, transform, (target_size, target_size))
    return AlignedFace(
        image=crop,
        transform=transform,
        inverse=invert(transform),
        landmarks=map_points(transform, landmarks),
        original_shape=tuple(np.shape(image)[:2]),
    )
