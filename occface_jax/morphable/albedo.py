"""Fallback albedo for models without a statistical texture model (such as the default ICT model).

No openly licensed morphable model ships an albedo basis, so texture coefficients get a documented
substitute that still means something:

- ``albedo_mean``: a skin tone (Deng et al.'s BFM mean albedo is about RGB (0.67, 0.51, 0.43) in
  [0, 1]) on skin, near-white sclera on eyeballs and a dark red on the mouth interior.
- ``albedo_basis`` (each coefficient N(0, 1)):
  * 3 global skin-tone modes: lightness, redness and yellowness directions in RGB, with standard
    deviations 0.12, 0.035 and 0.03 (roughly the spread of human skin tones in sRGB [0, 1]);
  * smooth spatial modes: orthonormal polynomials of the mean-shape position up to degree 3 (19
    non-constant terms, orthonormalised over the face region; off the region each vertex takes the
    value of its nearest face-region vertex, so they stay bounded), one per RGB channel,
    with standard deviations falling with degree (0.04, 0.025, 0.015). They express blush, shadowed eye sockets,
    darker jaw and similar low-frequency colour changes; they cannot express eyebrows or lips.

A statistical model (BFM) gives real albedo PCA instead; its loaders keep it (albedo_kind 'statistical').
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import cKDTree

SKIN_MEAN_RGB = np.array([0.67, 0.51, 0.43], np.float32)
SCLERA_RGB = np.array([0.80, 0.78, 0.75], np.float32)
MOUTH_RGB = np.array([0.35, 0.13, 0.11], np.float32)

_TONE_AXES = np.array(
    [[0.72, 0.55, 0.46], [0.82, -0.41, -0.41], [0.41, 0.41, -0.82]], np.float32
)  # lightness, redness, yellowness (rows, unit-normalised below)
_TONE_STD = np.array([0.12, 0.035, 0.03], np.float32)
_DEGREE_STD = {1: 0.04, 2: 0.025, 3: 0.015}


def fallback_albedo(
    mean_shape: np.ndarray,
    face_region: np.ndarray,
    non_skin_rgb: np.ndarray | None = None,
    max_degree: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """(albedo_mean (N, 3), albedo_basis (3N, K)) for a mesh in mm; K = 3 + 3 x n_poly_terms.

    ``non_skin_rgb`` (N, 3) with NaN rows on skin lets a caller colour eyes and mouth; the spatial
    basis is orthonormal over the ``face_region`` vertices (unit RMS there before scaling by std).
    """
    n = mean_shape.shape[0]
    mean = np.tile(SKIN_MEAN_RGB, (n, 1))
    if non_skin_rgb is not None:
        rows = ~np.isnan(non_skin_rgb).any(axis=1)
        mean[rows] = non_skin_rgb[rows]

    axes = _TONE_AXES / np.linalg.norm(_TONE_AXES, axis=1, keepdims=True)
    tone = np.einsum("kc,k->kc", axes, _TONE_STD)  # (3 modes, 3 channels)
    columns = [np.tile(t, n) for t in tone]  # each (3N,): same colour offset on every vertex

    region = face_region if face_region.any() else np.ones(n, bool)
    centre = mean_shape[region].mean(axis=0)
    scale = np.abs(mean_shape[region] - centre).max()
    p = (mean_shape - centre) / scale
    # Off the face region (back of the head, neck) the polynomials would grow without bound:
    # there, evaluate them at the nearest face-region vertex instead.
    region_ids = np.flatnonzero(region)
    nearest = region_ids[cKDTree(mean_shape[region]).query(mean_shape[~region])[1]]
    p[~region] = p[nearest]
    exponents = [
        e
        for d in range(1, max_degree + 1)
        for e in itertools.product(range(d + 1), repeat=3)
        if sum(e) == d
    ]
    mono = np.stack([np.prod(p ** np.array(e), axis=1) for e in exponents], axis=1)
    # Gram-Schmidt against the constant, over the face region, in increasing degree.
    design = np.concatenate([np.ones((n, 1)), mono], axis=1)
    q, r = np.linalg.qr(design[region])
    coeffs = np.linalg.solve(r, np.eye(r.shape[0]))  # design @ coeffs is orthonormal on the region
    ortho = (design @ coeffs)[:, 1:] * np.sqrt(region.sum())  # unit RMS on the region
    degrees = [sum(e) for e in exponents]
    for j, d in enumerate(degrees):
        for c in range(3):
            col = np.zeros((n, 3), np.float64)
            col[:, c] = ortho[:, j] * _DEGREE_STD[min(d, max(_DEGREE_STD))]
            columns.append(col.reshape(-1))
    basis = np.stack(columns, axis=1).astype(np.float32)
    return mean.astype(np.float32), basis
