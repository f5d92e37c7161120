"""Per-pixel attribute interpolation from a :class:`~occface_jax.render.raster.Raster`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.render.raster import Raster


def gather_corners(values: jax.Array, triangles: jax.Array, triangle_id: jax.Array) -> jax.Array:
    """Per-pixel corner values (..., H, W, 3, C) of the triangles ``triangle_id`` (..., H, W).

    ``values`` is (N, C) shared by the batch or (..., N, C) per image; empty pixels (-1) read
    triangle 0 (callers mask them).
    """
    corner = triangles[jnp.maximum(triangle_id, 0)]  # (..., H, W, 3)
    batch = triangle_id.shape[:-2]
    if values.ndim == 2:
        return values[corner]
    values = jnp.broadcast_to(values, batch + values.shape[-2:])
    n_vert = values.shape[-2]
    n_images = int(np.prod(batch, dtype=np.int64))
    # One plain gather from the flattened batch (a vmapped gather and its transpose compile to
    # slower batched ones on the CPU).
    offset = (n_vert * jnp.arange(n_images, dtype=corner.dtype)).reshape(batch + (1, 1, 1))
    return values.reshape(-1, values.shape[-1])[corner + offset]


def interpolate(attributes: jax.Array, raster: Raster, triangles: jax.Array) -> jax.Array:
    """Interpolate per-vertex attributes at pixel centres with perspective-correct barycentrics.

    Args:
      attributes: (N, C) or (..., N, C) per-vertex values (colours, normals, positions, UVs, ...).
      raster: output of ``rasterize`` for images (..., H, W).
      triangles: (F, 3) int32, the triangles that were rasterized.

    Returns:
      (..., H, W, C), 0 where no triangle covers the pixel. Differentiable with respect to
      ``attributes`` and, through ``raster.bary``, the clip-space vertex positions.
    """
    corners = gather_corners(attributes, triangles, raster.triangle_id)
    return jnp.einsum("...k,...kc->...c", raster.bary, corners)
