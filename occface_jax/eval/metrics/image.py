"""Image reconstruction metrics (inpainting, de-occlusion): L1, PSNR, SSIM; pure JAX, batched.

Images are (..., H, W, C) float in [0, ``data_range``] (default 1). SSIM is Wang et al. (2004)'s:
an 11 x 11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, population (co)variances, the map
averaged over the valid (unpadded) pixels and the channels, as
``skimage.metrics.structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def l1_error(predicted: Array, truth: Array) -> Array:
    """Mean absolute difference over pixels and channels: (..., H, W, C) -> (...,)."""
    return jnp.mean(jnp.abs(jnp.asarray(predicted) - jnp.asarray(truth)), axis=(-3, -2, -1))


def psnr(predicted: Array, truth: Array, data_range: float = 1.0) -> Array:
    """Peak signal-to-noise ratio in dB: 10 log10(range^2 / MSE), (...,) (inf when equal)."""
    mse = jnp.mean((jnp.asarray(predicted) - jnp.asarray(truth)) ** 2, axis=(-3, -2, -1))
    return 10.0 * jnp.log10(data_range**2 / mse)


def _gaussian_filter_valid(x: Array, sigma: float = 1.5, size: int = 11) -> Array:
    """Separable Gaussian filter over H and W, 'valid' (no padding): (..., H, W, C) ->
    (..., H - size + 1, W - size + 1, C)."""
    r = jnp.arange(size) - (size - 1) / 2
    g = jnp.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    h = x.shape[-3] - size + 1
    w = x.shape[-2] - size + 1
    rows = sum(g[k] * x[..., k : k + h, :, :] for k in range(size))
    return sum(g[k] * rows[..., :, k : k + w, :] for k in range(size))


def ssim_map(predicted: Array, truth: Array, data_range: float = 1.0) -> Array:
    """Structural similarity of every 11 x 11 window (see the module text), averaged over the
    channels: (..., H, W, C) -> (..., H - 10, W - 10), the window centred on pixel (i + 5, j + 5)."""
    x, y = jnp.asarray(predicted, jnp.float32), jnp.asarray(truth, jnp.float32)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _gaussian_filter_valid(x), _gaussian_filter_valid(y)
    vx = _gaussian_filter_valid(x * x) - mx**2
    vy = _gaussian_filter_valid(y * y) - my**2
    cxy = _gaussian_filter_valid(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return jnp.mean(s, axis=-1)


def ssim(predicted: Array, truth: Array, data_range: float = 1.0) -> Array:
    """Mean structural similarity (see the module text): (..., H, W, C) -> (...,), 1 when equal."""
    return jnp.mean(ssim_map(predicted, truth, data_range), axis=(-2, -1))


def _hole_mean(values: Array, mask: Array) -> Array:
    """Mean of (..., H, W) ``values`` over the pixels where ``mask`` (..., H, W) > 0.5 (NaN for an
    empty mask: no hole, nothing to score)."""
    inside = (jnp.asarray(mask) > 0.5).astype(jnp.float32)
    count = jnp.sum(inside, axis=(-2, -1))
    total = jnp.sum(values * inside, axis=(-2, -1))
    return jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan)


def masked_l1(predicted: Array, truth: Array, mask: Array) -> Array:
    """Mean absolute difference over the hole's pixels and the channels: images (..., H, W, C),
    ``mask`` (..., H, W) (> 0.5 = hole) -> (...,); NaN where the hole is empty."""
    diff = jnp.mean(jnp.abs(jnp.asarray(predicted) - jnp.asarray(truth)), axis=-1)
    return _hole_mean(diff, mask)


def masked_psnr(predicted: Array, truth: Array, mask: Array, data_range: float = 1.0) -> Array:
    """PSNR (dB) of the hole's pixels: 10 log10(range^2 / their MSE), (...,); NaN where empty."""
    mse = _hole_mean(jnp.mean((jnp.asarray(predicted) - jnp.asarray(truth)) ** 2, axis=-1), mask)
    return 10.0 * jnp.log10(data_range**2 / mse)


def masked_ssim(predicted: Array, truth: Array, mask: Array, data_range: float = 1.0) -> Array:
    """SSIM averaged over the windows centred on a hole pixel (the :func:`ssim_map` windows; a
    hole pixel within 5 px of the border has none), (...,); NaN where no window is centred in
    the hole."""
    inner = jnp.asarray(mask)[..., 5:-5, 5:-5]
    return _hole_mean(ssim_map(predicted, truth, data_range), inner)
