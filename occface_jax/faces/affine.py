"""2-D affine maps as (..., 2, 3) matrices [A | t] acting on (x, y) points, and bilinear warping, in
JAX (pure, differentiable, batched over leading axes). Coordinates: project pixel convention (x right,
y down, pixel centres at integer + 0.5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def fit_similarity(source: jax.Array, target: jax.Array) -> jax.Array:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``source`` (..., P, 2)
    onto ``target`` (..., P, 2); returns (..., 2, 3) affine matrices [A | t] with A = [[a, -b], [b, a]].
    Differentiable in both point sets."""
    source_mean = source.mean(axis=-2, keepdims=True)
    target_mean = target.mean(axis=-2, keepdims=True)
    s, t = source - source_mean, target - target_mean
    norm = jnp.sum(s**2, axis=(-2, -1))
    a = jnp.sum(s * t, axis=(-2, -1)) / norm
    b = jnp.sum(s[..., 0] * t[..., 1] - s[..., 1] * t[..., 0], axis=-1) / norm
    linear = jnp.stack([jnp.stack([a, -b], -1), jnp.stack([b, a], -1)], -2)
    translation = target_mean[..., 0, :] - jnp.einsum(
        "...ij,...j->...i", linear, source_mean[..., 0, :]
    )
    return jnp.concatenate([linear, translation[..., None]], axis=-1)


def compose_affine(first: jax.Array, second: jax.Array) -> jax.Array:
    """The affine map (..., 2, 3) that applies ``first`` and then ``second``."""
    linear = second[..., :2] @ first[..., :2]
    translation = second[..., :2] @ first[..., 2:] + second[..., 2:]
    return jnp.concatenate([linear, translation], axis=-1)


def invert_affine(matrix: jax.Array) -> jax.Array:
    """Inverse of (..., 2, 3) affine maps."""
    inverse = jnp.linalg.inv(matrix[..., :2])
    return jnp.concatenate([inverse, -inverse @ matrix[..., 2:]], axis=-1)


def apply_affine(matrix: jax.Array, points: jax.Array) -> jax.Array:
    """Apply (..., 2, 3) affine maps to points (..., P, 2)."""
    return jnp.einsum("...ij,...pj->...pi", matrix[..., :2], points) + matrix[..., None, :, 2]


def warp_affine(
    image: jax.Array, output_to_input: jax.Array, out_shape: tuple[int, int]
) -> jax.Array:
    """Bilinear resampling: output pixel (x, y) takes ``image`` at ``output_to_input @ (x, y, 1)``.
    image (H, W, C), matrix (2, 3), both in the project pixel convention; zeros outside the image.
    Differentiable in the image and in the matrix; vmap it for batches."""
    if not jnp.issubdtype(image.dtype, jnp.floating):
        image = image.astype(jnp.float32)
    height, width = out_shape
    ys, xs = jnp.meshgrid(
        jnp.arange(height, dtype=image.dtype) + 0.5,
        jnp.arange(width, dtype=image.dtype) + 0.5,
        indexing="ij",
    )
    grid = jnp.stack([xs.ravel(), ys.ravel()], axis=-1)
    source = apply_affine(output_to_input.astype(image.dtype), grid) - 0.5  # index coordinates
    x, y = source[:, 0], source[:, 1]
    x0, y0 = jnp.floor(x), jnp.floor(y)
    fx, fy = x - x0, y - y0
    x0i, y0i = x0.astype(jnp.int32), y0.astype(jnp.int32)
    in_h, in_w = image.shape[:2]

    def tap(yi: jax.Array, xi: jax.Array) -> jax.Array:
        inside = (yi >= 0) & (yi < in_h) & (xi >= 0) & (xi < in_w)
        value = image[jnp.clip(yi, 0, in_h - 1), jnp.clip(xi, 0, in_w - 1)]
        return jnp.where(inside[:, None], value, 0.0)

    out = (
        tap(y0i, x0i) * ((1 - fx) * (1 - fy))[:, None]
        + tap(y0i, x0i + 1) * (fx * (1 - fy))[:, None]
        + tap(y0i + 1, x0i) * ((1 - fx) * fy)[:, None]
        + tap(y0i + 1, x0i + 1) * (fx * fy)[:, None]
    )
    return out.reshape(height, width, image.shape[-1])


def random_similarity(
    key: jax.Array, size: float, shift: float, scale: float, rotation_deg: float
) -> jax.Array:
    """A random similarity (2, 3) of a square crop of side ``size`` px about its centre: uniform
    rotation in +-``rotation_deg`` degrees, scale in [1 - ``scale``, 1 + ``scale``], then a shift of
    up to +-``shift`` px along each axis (Deng et al.'s augmentation); the identity when all are 0.
    Maps input pixels to output pixels; warp an image with its inverse (``warp_affine``)."""
    k_angle, k_scale, k_shift = jax.random.split(key, 3)
    angle = jnp.deg2rad(rotation_deg) * jax.random.uniform(k_angle, (), minval=-1.0, maxval=1.0)
    factor = 1.0 + scale * jax.random.uniform(k_scale, (), minval=-1.0, maxval=1.0)
    offset = shift * jax.random.uniform(k_shift, (2,), minval=-1.0, maxval=1.0)
    a, b = factor * jnp.cos(angle), factor * jnp.sin(angle)
    linear = jnp.stack([jnp.stack([a, -b]), jnp.stack([b, a])])
    centre = jnp.full((2,), 0.5 * size)
    translation = centre + offset - linear @ centre
    return jnp.concatenate([linear, translation[:, None]], axis=-1)
