"""Per-pixel attribute interpolation from a :class:`~occface_jax.render.raster.Raster`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.render.raster import Raster, gather_corners
from occface_jax.render.schedule import map_images, resolve_images_per_pass


def interpolate(
    attributes: jax.Array,
    raster: Raster,
    triangles: jax.Array,
    *,
    images_per_pass: int | None = None,
) -> jax.Array:
    """Interpolate per-vertex attributes at pixel centres with perspective-correct barycentrics.

    Args:
      attributes: (N, C) or (..., N, C) per-vertex values (colours, normals, positions, UVs, ...).
      raster: output of ``rasterize`` for images (..., H, W).
      triangles: (F, 3) int32, the triangles that were rasterized.
      images_per_pass: static; how many images of the batch one pass covers (default 1 on the CPU,
        the whole batch elsewhere; see ``occface_jax.render.schedule``). The result does not
        depend on it.

    Returns:
      (..., H, W, C), 0 where no triangle covers the pixel. Differentiable with respect to
      ``attributes`` and, through ``raster.bary``, the clip-space vertex positions.
    """
    batch = raster.triangle_id.shape[:-2]
    n_images = int(np.prod(batch, dtype=np.int64))
    per_pass = resolve_images_per_pass(images_per_pass, n_images)
    if not batch or per_pass >= n_images:
        return _interpolate(attributes, raster.triangle_id, raster.bary, triangles)
    image = raster.triangle_id.shape[-2:]
    ids = raster.triangle_id.reshape((n_images,) + image)
    bary = raster.bary.reshape((n_images,) + image + (3,))
    if attributes.ndim == 2:  # shared by the batch: not mapped
        out = map_images(
            lambda i, b: _interpolate(attributes, i, b, triangles), [ids, bary], per_pass
        )
    else:
        per_image = jnp.broadcast_to(attributes, batch + attributes.shape[-2:])
        per_image = per_image.reshape((n_images,) + attributes.shape[-2:])
        out = map_images(
            lambda a, i, b: _interpolate(a, i, b, triangles), [per_image, ids, bary], per_pass
        )
    return out.reshape(batch + out.shape[1:])


def _interpolate(
    attributes: jax.Array, triangle_id: jax.Array, bary: jax.Array, triangles: jax.Array
) -> jax.Array:
    corners = gather_corners(attributes, triangles, triangle_id)
    return jnp.einsum("...k,...kc->...c", bary, corners)


def interpolate_planes(
    attributes: jax.Array, raster: Raster, triangles: jax.Array
) -> list[jax.Array]:
    """:func:`interpolate` of per-vertex ``attributes`` (N, C) over a ``raster`` (..., H, W), one
    (..., H, W) plane per channel: scalar gathers per channel and corner, which XLA fuses with
    what follows on the CPU (a large texture's attributes and projection: 39 ms against 91 for
    the interleaved (..., H, W, C) array and its slices). For forward passes: its gradient's
    scatter-adds are slower than :func:`interpolate`'s (the renderer's fit path keeps that)."""
    corner = triangles[jnp.maximum(raster.triangle_id, 0)]
    bary = raster.bary
    return [
        sum(bary[..., k] * channel[corner[..., k]] for k in range(3))
        for channel in jnp.asarray(attributes).T
    ]
