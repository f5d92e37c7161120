"""Per-pixel attribute interpolation from a :class:`~occface_jax.render.raster.Raster`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from occface_jax.render.raster import Raster, gather_corners


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
