"""Canny edges, hole growing and crop resizing in pure JAX: the image ops between the trained stages.

Why here (``faces/``): these are operations on aligned face crops, as ``faces.affine``'s warps
are, and the reconstruction front end (``app.predictors``: N_mask -> hole -> N_cont -> N_syn ->
regressor) must run them inside one jitted / exported function, where the host versions
(``data.contour.canny_contour``: scikit-image; ``data.inpainting.dilate``: OpenCV; ``cv2.resize``)
cannot go. ``data/`` stays host numpy (training records), ``render/`` is the renderer's room.

Conventions: images (..., H, W) float32 (gray) or (..., H, W, 3) RGB in [0, 1]; any leading batch
axes; edge maps and holes float32 {0, 1}. Everything is a function of arrays (jit, vmap).

:func:`canny` follows scikit-image's ``feature.canny`` (what ``data.contour.canny_contour`` calls,
with its sigma 1.8 and thresholds 0.1 / 0.2 on the Sobel magnitude in intensity units):

1. Gaussian of ``sigma`` px, truncated at 4 sigma, zeros beyond the border and renormalised by
   the blurred all-ones image (the border is not darkened);
2. Sobel derivatives (unnormalised [-1, 0, 1] x [1, 2, 1]), mirrored border ('symmetric');
3. non-maximum suppression in the four sectors of the gradient direction: the magnitude must be
   >= both neighbours one step along +/- the gradient, each interpolated linearly between the
   axis and the diagonal neighbour of its sector; the 1-px image border is never an edge;
4. double threshold: candidates >= ``low``, strong >= ``high``;
5. hysteresis: candidates 8-connected to a strong pixel, the fixed point of "grow the strong set
   by one 3 x 3 step inside the candidates" (``lax.while_loop``, bounded by the pixel count).

Differences from scikit-image (``tests/faces/test_edges.py`` measures them): float32 instead of
float64 (a pixel whose magnitude or interpolated neighbour sits within ~1e-7 of a threshold or a
tie may flip); nothing else by design. OpenCV's ``Canny`` differs more (no smoothing of its own,
uint8 or int16 gradients, its own border and direction quantisation).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

CANNY_SIGMA = 1.8  # px, the paper's (= data.contour.CANNY_SIGMA)
CANNY_LOW = 0.1  # Sobel magnitude of the smoothed gray image, intensity units (scikit-image's)
CANNY_HIGH = 0.2
TRUNCATE = 4.0  # the Gaussian kernel's half-width in sigmas (scipy's default)
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 (= data.contour.LUMA_WEIGHTS)


def luma(image: jax.Array) -> jax.Array:
    """BT.601 luma (..., H, W) of RGB images (..., H, W, 3) in [0, 1]."""
    return image[..., :3] @ jnp.asarray(LUMA_WEIGHTS, image.dtype)


def _shift(x: jax.Array, di: int, dj: int, fill: float = 0.0) -> jax.Array:
    """y[..., i, j] = x[..., i + di, j + dj], ``fill`` outside (|di|, |dj| <= the pad)."""
    pad = max(abs(di), abs(dj))
    if pad == 0:
        return x
    widths = [(0, 0)] * (x.ndim - 2) + [(pad, pad), (pad, pad)]
    padded = jnp.pad(x, widths, constant_values=fill)
    h, w = x.shape[-2:]
    return padded[..., pad + di : pad + di + h, pad + dj : pad + dj + w]


def gaussian_kernel(sigma: float, truncate: float = TRUNCATE) -> np.ndarray:
    """The normalised 1-D Gaussian (2r + 1,) with r = int(truncate sigma + 0.5) (scipy's radius)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / float(sigma)) ** 2)
    return kernel / kernel.sum()


def _correlate_axis(x: jax.Array, kernel: np.ndarray, axis: int) -> jax.Array:
    """Zero-padded correlation of (..., H, W) with a 1-D kernel along ``axis`` (-2 rows, -1 cols)."""
    radius = len(kernel) // 2
    out = jnp.zeros_like(x)
    for k, weight in enumerate(kernel):  # a loop over the kernel's taps, not over pixels
        offset = k - radius
        di, dj = (offset, 0) if axis == -2 else (0, offset)
        out = out + float(weight) * _shift(x, di, dj)
    return out


def _border_weights(n: int, kernel: np.ndarray) -> np.ndarray:
    """Sum of the kernel's taps that fall inside an axis of length ``n``, per position (n,)."""
    radius = len(kernel) // 2
    ones = np.pad(np.ones(n), radius)
    return np.correlate(ones, kernel, mode="valid")


def gaussian_blur(gray: jax.Array, sigma: float = CANNY_SIGMA) -> jax.Array:
    """Separable Gaussian of ``sigma`` px of (..., H, W), zeros beyond the border, divided by the
    blur of an all-ones image (scikit-image canny's 'bleed-over' normalisation)."""
    kernel = gaussian_kernel(sigma)
    h, w = gray.shape[-2:]
    norm = np.outer(_border_weights(h, kernel), _border_weights(w, kernel))
    blurred = _correlate_axis(_correlate_axis(gray, kernel, -2), kernel, -1)
    return blurred / jnp.asarray(norm + np.finfo(np.float32).eps, gray.dtype)


def sobel(image: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(d/d row, d/d column) of (..., H, W): [-1, 0, 1] along the axis times [1, 2, 1] across it
    (unnormalised, as ``scipy.ndimage.sobel``), the border mirrored (scipy's 'reflect')."""
    widths = [(0, 0)] * (image.ndim - 2) + [(1, 1), (1, 1)]
    p = jnp.pad(image, widths, mode="symmetric")
    h, w = image.shape[-2:]

    def at(di: int, dj: int) -> jax.Array:
        return p[..., 1 + di : 1 + di + h, 1 + dj : 1 + dj + w]

    d_row = (at(1, -1) + 2.0 * at(1, 0) + at(1, 1)) - (at(-1, -1) + 2.0 * at(-1, 0) + at(-1, 1))
    d_col = (at(-1, 1) + 2.0 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2.0 * at(0, -1) + at(1, -1))
    return d_row, d_col


def non_maximum_suppression(d_row: jax.Array, d_col: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(magnitude, local maximum (bool)) of gradients (..., H, W): a pixel is a maximum when its
    magnitude is >= the magnitude one step along + and - its gradient, interpolated between the
    axis neighbour and the diagonal neighbour of the gradient's sector (weight tan of the angle
    to the axis); the 1-px border is never a maximum."""
    magnitude = jnp.sqrt(d_row * d_row + d_col * d_col)
    a_row, a_col = jnp.abs(d_row), jnp.abs(d_col)
    mostly_rows = a_row >= a_col  # gradient within 45 degrees of the row axis
    weight = jnp.where(
        mostly_rows, a_col / jnp.maximum(a_row, 1e-30), a_row / jnp.maximum(a_col, 1e-30)
    )
    s_row = jnp.where(d_row >= 0, 1, -1)
    s_col = jnp.where(d_col >= 0, 1, -1)
    shifted = {(di, dj): _shift(magnitude, di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)}

    def neighbour(sign: int) -> jax.Array:
        """The interpolated magnitude one step along ``sign`` x the gradient."""
        r, c = sign * s_row, sign * s_col
        diagonal = jnp.zeros_like(magnitude)
        axis = jnp.zeros_like(magnitude)
        for i in (-1, 1):
            for j in (-1, 1):
                diagonal = jnp.where((r == i) & (c == j), shifted[i, j], diagonal)
            along_row = jnp.where(r == i, shifted[i, 0], 0.0)
            along_col = jnp.where(c == i, shifted[0, i], 0.0)
            axis = axis + jnp.where(mostly_rows, along_row, along_col)
        return (1.0 - weight) * axis + weight * diagonal

    h, w = magnitude.shape[-2:]
    inner = np.zeros((h, w), bool)
    inner[1:-1, 1:-1] = True
    keep = (magnitude >= neighbour(1)) & (magnitude >= neighbour(-1)) & jnp.asarray(inner)
    return magnitude, keep


def _grow(strong: jax.Array, candidates: jax.Array) -> jax.Array:
    """One hysteresis step: the candidates 8-connected to ``strong`` (bool (..., H, W))."""
    grown = strong
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            grown = grown | _shift(strong, di, dj, fill=False)
    return grown & candidates


def hysteresis(
    strong: jax.Array, candidates: jax.Array, max_iterations: int | None = None
) -> jax.Array:
    """The candidates (bool (..., H, W)) 8-connected through candidates to a strong pixel: the
    fixed point of :func:`_grow`, 4 steps per loop test, at most ``max_iterations`` steps (default
    H x W, which always reaches the fixed point: every step before it adds a pixel)."""
    h, w = candidates.shape[-2:]
    limit = int(max_iterations if max_iterations is not None else h * w)
    per_test = 4

    def body(state: tuple) -> tuple:
        current, _, steps = state
        grown = current
        for _ in range(per_test):
            grown = _grow(grown, candidates)
        return grown, jnp.any(grown != current), steps + per_test

    def cond(state: tuple) -> jax.Array:
        _, changed, steps = state
        return changed & (steps < limit)

    start = strong & candidates
    done, _, _ = jax.lax.while_loop(cond, body, (start, jnp.array(True), jnp.array(0)))
    return done


def canny(
    gray: jax.Array,
    sigma: float = CANNY_SIGMA,
    low: float = CANNY_LOW,
    high: float = CANNY_HIGH,
    max_iterations: int | None = None,
) -> jax.Array:
    """Canny edges (..., H, W) float32 {0, 1} of gray images (..., H, W) in [0, 1] (steps and
    differences from scikit-image in the module doc); ``low`` / ``high`` on the Sobel magnitude of
    the smoothed image, intensity units; ``sigma`` in pixels (static)."""
    gray = jnp.asarray(gray, jnp.float32)
    d_row, d_col = sobel(gaussian_blur(gray, sigma))
    magnitude, maximum = non_maximum_suppression(d_row, d_col)
    candidates = maximum & (magnitude >= low)
    edges = hysteresis(candidates & (magnitude >= high), candidates, max_iterations)
    return edges.astype(jnp.float32)


def canny_rgb(image: jax.Array, sigma: float = CANNY_SIGMA) -> jax.Array:
    """:func:`canny` of the BT.601 luma of RGB images (..., H, W, 3): ``data.contour.canny_contour``
    in JAX."""
    return canny(luma(jnp.asarray(image, jnp.float32)), sigma)


def disk_offsets(radius: int) -> list[tuple[int, int]]:
    """The offsets (di, dj) with di^2 + dj^2 <= radius^2 (``data.inpainting.disk``'s element)."""
    r = int(radius)
    return [(i, j) for i in range(-r, r + 1) for j in range(-r, r + 1) if i * i + j * j <= r * r]


def dilate_disk(mask: jax.Array, radius: int) -> jax.Array:
    """(..., H, W) float32 {0, 1}: ``mask`` > 0.5 dilated by a disk of ``radius`` px (static);
    nothing beyond the border (``data.inpainting.dilate``, OpenCV's, exactly)."""
    binary = jnp.asarray(mask) > 0.5
    grown = binary
    for di, dj in disk_offsets(radius):
        if (di, dj) != (0, 0):
            grown = grown | _shift(binary, di, dj, fill=False)
    return grown.astype(jnp.float32)


def dilation_radius(dilation: float, side: int) -> int:
    """Disk radius in whole pixels for a dilation given as a fraction of the side: rounded, at
    least 1 when ``dilation`` > 0 (``data.inpainting.dilation_radius``)."""
    if dilation <= 0:
        return 0
    return max(1, round(dilation * side))


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 resampling of one axis as ``cv2.resize`` does for float images: by
    area (each output pixel the mean of the input interval it covers) when shrinking, bilinear
    with pixel centres at + 0.5 and the edge pixel repeated when growing, identity when equal."""
    if n_in == n_out:
        return np.eye(n_in)
    matrix = np.zeros((n_out, n_in))
    scale = n_in / n_out
    if n_out < n_in:  # area: overlap of [i s, (i + 1) s) with [k, k + 1)
        for i in range(n_out):
            lo, hi = i * scale, (i + 1) * scale
            for k in range(math.floor(lo), min(math.ceil(hi), n_in)):
                matrix[i, k] = (min(hi, k + 1) - max(lo, k)) / scale
        return matrix
    for i in range(n_out):
        x = (i + 0.5) * scale - 0.5
        k = math.floor(x)
        frac = x - k
        if k < 0:
            k, frac = 0, 0.0
        k1 = min(k + 1, n_in - 1)
        k = min(k, n_in - 1)
        matrix[i, k] += 1.0 - frac
        matrix[i, k1] += frac
    return matrix


def resize_square(x: jax.Array, size: int, channels: bool = False) -> jax.Array:
    """Square maps (..., S, S) or, with ``channels``, images (..., S, S, C) at ``size`` x
    ``size``: ``cv2.resize`` with INTER_AREA when shrinking, INTER_LINEAR when growing (the host
    ``app.predictors.resize_square``), as two small matrix products (static sizes)."""
    axis = -3 if channels else -2
    side = x.shape[axis]
    if side == size:
        return x
    m = jnp.asarray(resize_matrix(side, size), jnp.float32)
    if channels:
        return jnp.einsum("ik,...klc,jl->...ijc", m, x, m, precision="highest")
    return jnp.einsum("ik,...kl,jl->...ij", m, x, m, precision="highest")


def resize_hole(hole: jax.Array, size: int) -> jax.Array:
    """A hole (..., S, S) at ``size``: any partly covered pixel stays in the hole."""
    return (resize_square(hole, size) > 0.0).astype(jnp.float32)
