"""Gray images and contour maps as the paper builds them: Canny edges with Gaussian sigma 1.8.

Images are float32 (H, W, 3) RGB in [0, 1]; gray and contour maps are float32 (H, W) in [0, 1]
(contours binary).
"""

from __future__ import annotations

import numpy as np
from skimage import feature

CANNY_SIGMA = 1.8
# ITU-R BT.601 luma weights (what OpenCV's and PIL's RGB->gray use).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Luma (H, W) float32 of an RGB image (H, W, 3) in [0, 1] (BT.601 weights); gray input passes."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        return image
    return image[..., :3] @ LUMA_WEIGHTS


def canny_contour(
    image: np.ndarray,
    sigma: float = CANNY_SIGMA,
    low_threshold: float = 0.1,
    high_threshold: float = 0.2,
) -> np.ndarray:
    """Binary edge map (H, W) float32 of an RGB or gray image in [0, 1]: Canny on the luma after a
    Gaussian of ``sigma`` pixels (1.8 as in the paper); thresholds on the Sobel gradient magnitude of the
    smoothed image in intensity units (scikit-image's convention)."""
    gray = to_gray(image).astype(np.float64)
    edges = feature.canny(
        gray, sigma=sigma, low_threshold=low_threshold, high_threshold=high_threshold
    )
    return edges.astype(np.float32)
