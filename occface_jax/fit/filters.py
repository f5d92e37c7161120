"""Morphological filters of (…, H, W) maps with square windows (pure, jit-friendly)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def max_filter(x: jax.Array, size: int) -> jax.Array:
    """Dilation: the maximum over the ``size`` x ``size`` window centred on each pixel of ``x``
    (H, W) (beyond the border counts as -inf)."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (size, size), (1, 1), "SAME")


def min_filter(x: jax.Array, size: int) -> jax.Array:
    """Erosion: the minimum over the ``size`` x ``size`` window (beyond the border: +inf)."""
    return -max_filter(-x, size)


def closing(x: jax.Array, size: int) -> jax.Array:
    """Dilation then erosion with a ``size`` x ``size`` window: fills gaps narrower than it."""
    return min_filter(max_filter(x, size), size)
