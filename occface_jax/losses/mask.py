"""Losses of the occlusion-mask network N_mask, pure functions of arrays.

Logits and targets are (..., H, W); targets in [0, 1] (1 = occluder). Every loss returns one scalar
per leading batch index, shape (...,); callers take the mean.

- ``sigmoid_bce``: mean binary cross-entropy of ``sigmoid(logits)`` against the target, computed from
  the logits (``log(1 + e^x) - t x``, stable for any magnitude).
- ``soft_dice_loss``: 1 - (2 sum p t + eps) / (sum p + sum t + eps) with p = sigmoid(logits): a
  region-overlap term that does not let small occluders drown in the background.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sigmoid_bce(logits: jax.Array, target: jax.Array) -> jax.Array:
    """Mean binary cross-entropy per image, (..., H, W) -> (...,)."""
    per_pixel = jax.nn.softplus(logits) - target * logits
    return jnp.mean(per_pixel, axis=(-2, -1))


def soft_dice_loss(logits: jax.Array, target: jax.Array, eps: float = 1.0) -> jax.Array:
    """1 - soft Dice overlap per image, (..., H, W) -> (...,); ``eps`` (pixels) makes an empty
    prediction of an empty target cost 0."""
    p = jax.nn.sigmoid(logits)
    overlap = jnp.sum(p * target, axis=(-2, -1))
    total = jnp.sum(p, axis=(-2, -1)) + jnp.sum(target, axis=(-2, -1))
    return 1.0 - (2.0 * overlap + eps) / (total + eps)
