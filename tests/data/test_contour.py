"""Tests of occface_jax/data/contour.py against OpenCV's Canny and exact geometry."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data

from occface_jax.data.contour import CANNY_SIGMA, canny_contour, to_gray


def test_matches_opencv_canny_with_the_same_blur_and_thresholds():
    img = (
        cv2.resize(data.astronaut(), (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32)
        / 255
    )
    ours = canny_contour(img) > 0
    # Independent pipeline: OpenCV Gaussian (sigma 1.8), 3x3 Sobel, OpenCV Canny on fixed-point gradients.
    blurred = cv2.GaussianBlur(to_gray(img).astype(np.float64), (0, 0), CANNY_SIGMA)
    scale = 1000.0
    dx = np.round(cv2.Sobel(blurred, cv2.CV_64F, 1, 0, ksize=3) * scale).astype(np.int16)
    dy = np.round(cv2.Sobel(blurred, cv2.CV_64F, 0, 1, ksize=3) * scale).astype(np.int16)
    ref = cv2.Canny(dx, dy, 0.1 * scale, 0.2 * scale, L2gradient=True) > 0
    interior = np.zeros_like(ours)
    interior[6:-6, 6:-6] = True  # border handling differs (skimage masks the border out)
    ours, ref = ours & interior, ref & interior
    near_ref = cv2.dilate(ref.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    near_ours = cv2.dilate(ours.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    precision = (ours & near_ref).sum() / ours.sum()
    recall = (ref & near_ours).sum() / ref.sum()
    assert ours.sum() > 500 and precision > 0.95 and recall > 0.95


def test_disk_edge_lies_on_its_circle_and_flat_image_has_none():
    yy, xx = np.mgrid[0:96, 0:96] + 0.5
    radius = 25.0
    disk = ((xx - 48) ** 2 + (yy - 48) ** 2 < radius**2).astype(np.float32)
    edges = canny_contour(np.repeat(disk[..., None], 3, -1)) > 0
    r = np.hypot(xx[edges] - 48, yy[edges] - 48)
    assert edges.sum() > 2 * np.pi * radius * 0.8
    assert np.abs(r - radius).max() < 1.5
    assert canny_contour(np.full((32, 32, 3), 0.4, np.float32)).sum() == 0


def test_gray_uses_bt601_weights_like_opencv():
    rgb = np.random.default_rng(0).uniform(0, 1, (8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(to_gray(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), atol=1e-6)
