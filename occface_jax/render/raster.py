"""Rasterization in pure JAX: per pixel the front-most triangle, perspective-correct barycentrics and depth.

Algorithm (static shapes, no loop over pixels or triangles):

1. Triangle setup: clip-space vertices to pixel coordinates (x right, y down, pixel centres at
   integer + 0.5), snapped to a 1/256 pixel grid for the visibility decision as GPU rasterizers do.
   Triangles with a vertex at or behind the eye plane (w <= ``W_EPSILON``), degenerate ones, culled ones and
   ones whose pixel-centre bounding box misses the image get no work.
2. A pass covers ``images_per_pass`` images (``occface_jax.render.schedule``: 1 on the CPU, the
   whole batch on a GPU) as ONE pass over their B x F triangles writing into a B x H x W z-buffer
   (so the control flow below stays scalar under a batch; a vmap would turn each ``cond`` into a
   select and run the big-triangle path for every image). Pass 1 evaluates the first 2 x 2 pixels
   of every triangle's bounding box (slot = triangle, no lookup), or the first 3 x 3 when more than
   a quarter of the pass's triangles are bigger than 2 x 2 (a ``cond``; sub-pixel triangles, as a
   BFM-size mesh's at 224 px, cover at most 2 x 2). Pass 2 cuts the boxes of bigger triangles into
   ``tile`` x ``tile`` tiles, lays them out with a cumulative sum and processes them in chunks of
   ``tile_capacity``: it is skipped when no box is bigger than pass 1's, its first chunk runs
   unrolled, more run in a ``lax.while_loop`` only when needed, so a 200-pixel triangle costs as
   many tiles as it needs and coverage is never dropped.
3. For each candidate pixel of a tile: edge functions with the top-left fill rule, OpenGL's NDC depth
   (z/w interpolated linearly in screen space), depth clipping to [-1, 1]; then ONE scatter-min per chunk
   of packed keys (depth quantised relative to the mesh's depth range in the high bits, triangle id in the
   low bits) into a z-buffer, so the front-most triangle id falls out directly. Each tile's keys are one
   window of the scatter (written at the tile's corner, uncovered pixels keep the empty key).
4. Barycentrics and depth are recomputed per pixel from the winning triangle (a gather), without
   snapping; this is the only place gradients flow (visibility is piecewise constant).

Depth ties closer than one quantum (depth range / 2**(32 - bits(F)); ~1e-4 of the range for 70k
triangles) resolve to the lower triangle id, as OpenGL's GL_LESS does for draw order.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.render.schedule import map_images, resolve_images_per_pass

W_EPSILON = 1e-6
SUBPIXEL_STEPS = 256.0
_EMPTY_KEY = np.uint32(0xFFFFFFFF)


class Raster(NamedTuple):
    """Output of :func:`rasterize` for images of shape (..., H, W).

    triangle_id: int32, index into ``triangles`` of the front-most triangle, -1 where nothing is drawn.
    bary: float32 (..., H, W, 3), perspective-correct barycentrics of the pixel centre (0 where empty).
    ndc_depth: float32, OpenGL NDC depth z/w in [-1, 1] (1 where empty); window depth is (ndc + 1) / 2.
    mask: float32, 1 where a triangle covers the pixel centre, else 0.
    """

    triangle_id: jax.Array
    bary: jax.Array
    ndc_depth: jax.Array
    mask: jax.Array


def _screen(clip: jax.Array, image_size: tuple[int, int]) -> tuple[jax.Array, ...]:
    """Pixel x, y, NDC depth z/w and 1/w of clip positions (..., 4); w is clamped to stay finite."""
    return _screen_components(*(clip[..., j] for j in range(4)), image_size)


def _screen_components(
    x: jax.Array, y: jax.Array, z: jax.Array, w: jax.Array, image_size: tuple[int, int]
) -> tuple[jax.Array, ...]:
    """:func:`_screen` of clip positions given as their four components."""
    height, width = image_size
    safe_w = jnp.where(w > W_EPSILON, w, 1.0)
    inv_w = 1.0 / safe_w
    return (x * inv_w + 1.0) * (0.5 * width), (1.0 - y * inv_w) * (0.5 * height), z * inv_w, inv_w


def edge_functions(
    x: jax.Array, y: jax.Array, px: jax.Array, py: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Edge functions (e0, e1, e2) of triangles with pixel vertices x, y (..., 3) at points px, py (...),
    and twice the signed area; e_i / area are the screen-space barycentrics (e_i is opposite vertex i).
    """
    x0, x1, x2 = x[..., 0:1], x[..., 1:2], x[..., 2:3]
    y0, y1, y2 = y[..., 0:1], y[..., 1:2], y[..., 2:3]
    e0 = (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)
    e1 = (x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)
    e2 = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    return e0, e1, e2, area


def _top_left(dx: jax.Array, dy: jax.Array, sign: jax.Array) -> jax.Array:
    """Whether an edge with direction (dx, dy) of a triangle with area sign ``sign`` owns pixels lying
    exactly on it (top-left rule in y-down pixel coordinates: inward normal to the right, or downward on
    horizontal edges)."""
    normal_x = -sign * dy
    normal_y = sign * dx
    return (normal_x > 0) | ((normal_x == 0) & (normal_y > 0))


def _triangle_planes(
    clip: jax.Array, triangles: jax.Array, image_size: tuple[int, int], cull: str
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    """Per-triangle setup for visibility on the 1/256-pixel grid, structure-of-arrays layout.

    Returns ``planes`` (12, F): for the three edge functions (normalised positive inside, top-left
    bias folded in) and the NDC depth, rows (value at the anchor pixel centre, step per column, step
    per row); ``box`` (4, F) int32 pixel-centre bounds (col0, row0, col1, row1), anchor (col0, row0);
    ``usable`` (F,) bool; ``z_lo``/``z_hi`` (F,) the NDC depth range of each usable triangle (1 and
    -1 for the others).
    """
    height, width = image_size
    sx, sy, sz, _ = _screen(clip, image_size)  # per vertex, (N,)
    sx = jnp.round(sx * SUBPIXEL_STEPS) / SUBPIXEL_STEPS
    sy = jnp.round(sy * SUBPIXEL_STEPS) / SUBPIXEL_STEPS
    in_front = clip[:, 3] > W_EPSILON
    corners = [triangles[:, k] for k in range(3)]
    x = [sx[c] for c in corners]
    y = [sy[c] for c in corners]
    z = [sz[c] for c in corners]

    def pixel_range(v: list[jax.Array], size: int) -> tuple[jax.Array, jax.Array]:
        lo = jnp.ceil(jnp.clip(jnp.minimum(jnp.minimum(v[0], v[1]), v[2]), -2.0, size + 2.0) - 0.5)
        hi = jnp.floor(jnp.clip(jnp.maximum(jnp.maximum(v[0], v[1]), v[2]), -2.0, size + 2.0) - 0.5)
        return jnp.maximum(lo, 0).astype(jnp.int32), jnp.minimum(hi, size - 1).astype(jnp.int32)

    col0, col1 = pixel_range(x, width)
    row0, row1 = pixel_range(y, height)
    # Positions relative to the anchor pixel centre: exact on the 1/256 grid for small triangles.
    ax = col0.astype(sx.dtype) + 0.5
    ay = row0.astype(sy.dtype) + 0.5
    lx = [xi - ax for xi in x]
    ly = [yi - ay for yi in y]
    area = (lx[1] - lx[0]) * (ly[2] - ly[0]) - (ly[1] - ly[0]) * (lx[2] - lx[0])
    sign = jnp.where(area < 0, -1.0, 1.0)
    usable = in_front[corners[0]] & in_front[corners[1]] & in_front[corners[2]] & (area != 0)
    usable &= ((z[0] <= 1) | (z[1] <= 1) | (z[2] <= 1)) & (
        (z[0] >= -1) | (z[1] >= -1) | (z[2] >= -1)
    )
    usable &= (col1 >= col0) & (row1 >= row0)
    if cull == "back":  # front faces are counter-clockwise in OpenGL's y-up window: area < 0 here
        usable &= area < 0
    elif cull == "front":
        usable &= area > 0
    elif cull != "none":
        raise ValueError(f"cull must be 'none', 'back' or 'front', not {cull!r}")

    inv_area = 1.0 / jnp.where(area != 0, area, 1.0)
    rows = []
    depth = [jnp.zeros_like(area)] * 3
    for k, (a, b) in enumerate(((1, 2), (2, 0), (0, 1))):
        dx = lx[b] - lx[a]
        dy = ly[b] - ly[a]
        # e_k(p) = dx * (py - y_a) - dy * (px - x_a), opposite vertex k; e_k / area = barycentric k.
        plane = (dy * lx[a] - dx * ly[a], -dy, dx)
        bias = jnp.where(_top_left(dx, dy, sign), 2.0**-20, 0.0)
        rows += [plane[0] * sign + bias, plane[1] * sign, plane[2] * sign]
        depth = [d + p * (z[k] * inv_area) for d, p in zip(depth, plane, strict=True)]
    planes = jnp.stack(rows + depth)  # (12, F)
    box = jnp.stack([col0, row0, col1, row1])
    z_min = jnp.clip(jnp.minimum(jnp.minimum(z[0], z[1]), z[2]), -1.0, 1.0)
    z_max = jnp.clip(jnp.maximum(jnp.maximum(z[0], z[1]), z[2]), -1.0, 1.0)
    return planes, box, usable, jnp.where(usable, z_min, 1.0), jnp.where(usable, z_max, -1.0)


def _rasterize_flat(
    clip: jax.Array,
    triangles: jax.Array,
    image_size: tuple[int, int],
    tile: int,
    tile_capacity: int,
    cull: str,
    first: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Visibility for a batch of images (B, N, 4) as ONE pass over B x F triangles into a B x H x W
    z-buffer (so the control flow below stays scalar under a batch): (B, H, W) int32 triangle ids (-1
    empty), and the number of tiles evaluated.

    Pass 1 evaluates the first ``first`` x ``first`` pixels of every triangle (slot = triangle, no
    lookup; ``first`` None: 3 when more than a quarter of the triangles are bigger than 2 x 2, else
    2, decided at run time); pass 2 cuts the boxes of the triangles bigger than that into ``tile``
    x ``tile`` tiles (the first tile again when ``first`` < ``tile``: a scatter-min does not mind)
    and walks them in chunks of ``tile_capacity`` until none is left.
    """
    height, width = image_size
    batch, n_tri = clip.shape[0], triangles.shape[0]
    n_flat = batch * n_tri
    id_bits = max(1, int(n_tri).bit_length())
    depth_levels = float(2 ** (32 - id_bits) - 1)
    # One setup over the B x F triangles of the flattened B x N vertices (plain gathers; a vmapped
    # setup compiles to batched gathers that are ~2x slower on the CPU).
    n_vert = clip.shape[1]
    flat_triangles = triangles[None] + (n_vert * jnp.arange(batch, dtype=jnp.int32))[:, None, None]
    planes, box, usable, z_lo, z_hi = _triangle_planes(
        clip.reshape(-1, 4), flat_triangles.reshape(-1, 3), image_size, cull
    )
    planes = planes.reshape(12, batch, n_tri).transpose(1, 0, 2)  # (B, 12, F)
    box = box.reshape(4, batch, n_tri).transpose(1, 0, 2)  # (B, 4, F)
    usable = usable.reshape(batch, n_tri)
    z_lo = jnp.min(z_lo.reshape(batch, n_tri), axis=1)  # (B,) depth range of each image
    z_hi = jnp.max(z_hi.reshape(batch, n_tri), axis=1)
    z_scale = depth_levels / jnp.maximum(z_hi - z_lo, 1e-20)
    # Depth rows rescaled to key levels, and the clipping range [-1, 1] in those levels.
    level_rows = (
        planes[:, 9:] - jnp.stack([z_lo, jnp.zeros_like(z_lo), jnp.zeros_like(z_lo)], 1)[:, :, None]
    ) * z_scale[:, None, None]
    level_lo = ((-1.0 - z_lo) * z_scale)[:, None]
    level_hi = ((1.0 - z_lo) * z_scale)[:, None]
    planes = jnp.concatenate([planes[:, :9], level_rows], axis=1)
    bounds = jnp.stack(
        [jnp.broadcast_to(level_lo, usable.shape), jnp.broadcast_to(level_hi, usable.shape)], 1
    )
    # Box sides in pixels (>= 1 where usable; the others are masked).
    wide = jnp.maximum(box[:, 2] - box[:, 0] + 1, 1)
    tall = jnp.maximum(box[:, 3] - box[:, 1] + 1, 1)
    # The z-buffer has a margin of (window - 1) pixels right and below, so that every window
    # anchored inside the image fits (a window that does not fit would be dropped whole).
    margin = max(first or 3, tile) - 1
    padded = (height + margin, width + margin)

    def splat(zbuf, tri, pl, bd, bx, image, tile_x0, tile_y0, valid, side):
        """Scatter-min the keys of the ``side`` x ``side`` candidate pixels of each tile (1-D
        arrays, one entry per tile): triangle ``tri``, ``pl`` (12, T) planes, ``bd`` (2, T) level
        range, ``bx`` (4, T) boxes, the image, the tile's offset from the box anchor.

        One window per tile: the keys are computed in a (T, side, side) array and written as a
        window into the (B, H, W) z-buffer at the tile's corner. A flat list of candidate pixels
        instead made XLA's CPU backend compute the keys element by element (~5x slower)."""
        local = jnp.arange(side, dtype=jnp.int32)
        dx = tile_x0[:, None, None] + local[None, None, :]
        dy = tile_y0[:, None, None] + local[None, :, None]
        fx = dx.astype(jnp.float32)
        fy = dy.astype(jnp.float32)
        col = lambda a: a[:, None, None]  # noqa: E731
        inside = (dx <= col(bx[2] - bx[0])) & (dy <= col(bx[3] - bx[1]))
        for k in range(3):
            inside &= col(pl[3 * k]) + col(pl[3 * k + 1]) * fx + col(pl[3 * k + 2]) * fy > 0
        level = col(pl[9]) + col(pl[10]) * fx + col(pl[11]) * fy
        inside &= (level >= col(bd[0])) & (level <= col(bd[1]))
        key = (jnp.clip(level, 0.0, depth_levels).astype(jnp.uint32) << id_bits) | col(tri)
        key = jnp.where(inside, key, _EMPTY_KEY)
        corner = jnp.stack(
            [jnp.where(valid, image, batch), bx[1] + tile_y0, bx[0] + tile_x0], axis=-1
        )
        numbers = jax.lax.ScatterDimensionNumbers(
            update_window_dims=(1, 2),
            inserted_window_dims=(0,),
            scatter_dims_to_operand_dims=(0, 1, 2),
        )
        return jax.lax.scatter_min(
            zbuf, corner, key, numbers, mode=jax.lax.GatherScatterMode.FILL_OR_DROP
        )

    def visibility(first: int) -> tuple[jax.Array, jax.Array]:
        """The z-buffer after pass 1 (``first`` x ``first``) and pass 2, and the tiles evaluated."""
        # lax.div, not jnp's floor_divide, whose sign fix-ups kept the per-triangle fusions from
        # vectorizing.
        tiles_x = jax.lax.div(wide + (tile - 1), jnp.int32(tile))
        tiles_y = jax.lax.div(tall + (tile - 1), jnp.int32(tile))
        if first == tile:
            tiles_x = jnp.where(usable, tiles_x, 0)
            extra = jnp.maximum(tiles_x * jnp.where(usable, tiles_y, 0) - 1, 0)
            skip = 1
        else:
            big = usable & ((wide > first) | (tall > first))
            tiles_x = jnp.where(big, tiles_x, 0)
            extra = tiles_x * jnp.where(big, tiles_y, 0)
            skip = 0
        zbuf = jnp.full((batch,) + padded, _EMPTY_KEY, jnp.uint32)
        tri_ids = jnp.arange(n_tri, dtype=jnp.uint32)
        zeros = jnp.zeros((n_flat,), jnp.int32)
        zbuf = splat(
            zbuf,
            jnp.broadcast_to(tri_ids, (batch, n_tri)).reshape(-1),
            planes.transpose(1, 0, 2).reshape(12, -1),
            bounds.transpose(1, 0, 2).reshape(2, -1),
            box.transpose(1, 0, 2).reshape(4, -1),
            jnp.repeat(jnp.arange(batch, dtype=jnp.int32), n_tri),
            zeros,
            zeros,
            usable.reshape(-1),
            first,
        )
        extra = extra.reshape(-1)
        tiles_x = tiles_x.reshape(-1)
        extra_end = jnp.cumsum(extra)
        n_extra = extra_end[-1]
        slot_ids = jnp.arange(tile_capacity, dtype=jnp.int32)
        as_float = jax.lax.bitcast_convert_type

        def pass2(zbuf: jax.Array) -> jax.Array:
            per_triangle = jnp.concatenate(
                [planes, bounds, as_float(box, jnp.float32)], axis=1
            )  # (B, 18, F)
            per_triangle = per_triangle.transpose(0, 2, 1).reshape(n_flat, -1)  # a row per slot

            def body(state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
                start, zbuf = state
                slot = start + slot_ids
                flat = jnp.minimum(jnp.searchsorted(extra_end, slot, side="right"), n_flat - 1)
                local = slot - (extra_end[flat] - extra[flat]) + skip  # tile index in the triangle
                tx = jnp.maximum(tiles_x[flat], 1)
                row_t = jax.lax.div(local, tx)  # non-negative: truncation is the floor
                rows = per_triangle[flat].T
                image = jax.lax.div(flat, jnp.int32(n_tri))
                tri = (flat - image * n_tri).astype(jnp.uint32)
                valid = slot < n_extra
                zbuf = splat(
                    zbuf,
                    tri,
                    rows[:12],
                    rows[12:14],
                    as_float(rows[14:18], jnp.int32),
                    image,
                    (local - row_t * tx) * tile,
                    row_t * tile,
                    valid,
                    tile,
                )
                return start + tile_capacity, zbuf

            # The first chunk is not in the loop (XLA's CPU while loop is slow); further chunks run
            # only when big triangles need them.
            state = body((jnp.int32(0), zbuf))
            return jax.lax.cond(
                n_extra > tile_capacity,
                lambda s: jax.lax.while_loop(lambda s: s[0] < n_extra, body, s),
                lambda s: s,
                state,
            )[1]

        # Skipped (with the table it needs) when every triangle fits in the first tile.
        zbuf = jax.lax.cond(n_extra > 0, pass2, lambda z: z, zbuf)[:, :height, :width]
        return zbuf, n_extra + jnp.sum(usable)

    if first is None:
        # Pass 1 covers 3 x 3 pixels when more than a quarter of the triangles are bigger than
        # 2 x 2 (a face mesh of ~30k triangles at 224 px: each saves pass 2 a tile); else 2 x 2
        # (sub-pixel triangles: 4 candidates each instead of 9).
        n_big = jnp.sum(usable & ((wide > 2) | (tall > 2)))
        zbuf, n_tiles = jax.lax.cond(
            4 * n_big > jnp.sum(usable), lambda: visibility(3), lambda: visibility(2)
        )
    else:
        zbuf, n_tiles = visibility(first)
    covered = zbuf != _EMPTY_KEY
    ids = (zbuf & np.uint32((1 << id_bits) - 1)).astype(jnp.int32)
    return jnp.where(covered, ids, -1), n_tiles


def default_tile_capacity(n_triangles: int, tile: int) -> int:
    """Pass-2 tiles per chunk and image (``rasterize`` multiplies by the batch size): enough for a
    face mesh at 224 px in one or two chunks, a multiple of 1024."""
    want = int(n_triangles * (0.25 if tile >= 4 else 0.6)) + 1024
    return -(-want // 1024) * 1024


def rasterize(
    clip: jax.Array,
    triangles: jax.Array,
    image_size: tuple[int, int],
    *,
    tile: int = 3,
    tile_capacity: int | None = None,
    cull: str = "none",
    images_per_pass: int | None = None,
) -> Raster:
    """Rasterize triangles given clip-space vertex positions.

    Args:
      clip: (..., N, 4) float32 OpenGL clip-space positions (see ``camera``); leading axes are a batch.
      triangles: (F, 3) int32 vertex indices, shared by the batch.
      image_size: static (height, width) in pixels.
      tile: static side of the square pixel tiles the bounding box of a triangle bigger than the
        first pass's 2 x 2 (or 3 x 3) pixel centres is cut into.
      tile_capacity: static tiles per chunk of work for one pass (default from F times the images
        per pass); any number of tiles is processed, more chunks just take longer.
      cull: 'none', 'back' (drop triangles clockwise in OpenGL's window, i.e. facing away when the mesh
        is counter-clockwise seen from outside) or 'front'.
      images_per_pass: static; how many images of the batch one rasterization pass covers (default
        1 on the CPU, the whole batch elsewhere; see ``occface_jax.render.schedule``). The result
        does not depend on it.

    Returns:
      :class:`Raster`; ``bary`` and ``ndc_depth`` are differentiable with respect to ``clip``.
    """
    image_size = (int(image_size[0]), int(image_size[1]))
    triangles = jnp.asarray(triangles, jnp.int32)
    n_images = int(np.prod(clip.shape[:-2], dtype=np.int64))
    per_pass = resolve_images_per_pass(images_per_pass, n_images)
    capacity = tile_capacity or default_tile_capacity(triangles.shape[0], tile) * per_pass
    visible = jax.lax.stop_gradient(clip)

    batch = clip.shape[:-2]
    flat = visible.reshape((-1,) + clip.shape[-2:])

    def one_pass(visible_clip: jax.Array, pass_clip: jax.Array) -> tuple[jax.Array, ...]:
        ids = _rasterize_flat(visible_clip, triangles, image_size, tile, capacity, cull)[0]
        return (ids,) + barycentrics(pass_clip, triangles, ids, image_size)

    positions = clip.reshape(flat.shape)  # with gradients, for the barycentrics
    triangle_id, bary, ndc_depth = (
        a.reshape(batch + a.shape[1:]) for a in map_images(one_pass, [flat, positions], per_pass)
    )
    mask = (triangle_id >= 0).astype(clip.dtype)
    return Raster(triangle_id, bary, ndc_depth, mask)


def barycentrics(
    clip: jax.Array, triangles: jax.Array, triangle_id: jax.Array, image_size: tuple[int, int]
) -> tuple[jax.Array, jax.Array]:
    """Perspective-correct barycentrics (..., H, W, 3) and NDC depth (..., H, W) at pixel centres of the
    given triangle ids (..., H, W) (-1 = empty: barycentrics 0, depth 1); differentiable in ``clip``
    ((N, 4) shared by the batch or (..., N, 4) per image)."""
    batch = triangle_id.shape[:-2]
    clip = jnp.broadcast_to(clip, batch + clip.shape[-2:])
    corner = _flat_corners(triangles, triangle_id, clip.shape[-2])
    # One scalar gather per corner and clip component from the planar (4, B N) positions: its
    # transpose in the backward pass is 12 scalar scatter-adds, where a (..., H, W, 3, 4) cotangent
    # was one slow interleaving fusion on the CPU.
    planes = clip.reshape(-1, 4).T
    corners = tuple(tuple(planes[j][corner[k]] for j in range(4)) for k in range(3))
    return _pixel_barycentrics(corners, triangle_id >= 0, tuple(image_size))


def _flat_corners(triangles: jax.Array, triangle_id: jax.Array, n_vert: int) -> list[jax.Array]:
    """Per corner k, the (..., H, W) index of pixel's triangle's corner k into the batch's flattened
    (B N) vertices (empty pixels read triangle 0; callers mask them)."""
    corner = triangles[jnp.maximum(triangle_id, 0)]  # (..., H, W, 3)
    batch = triangle_id.shape[:-2]
    n_images = int(np.prod(batch, dtype=np.int64))
    offset = (n_vert * jnp.arange(n_images, dtype=corner.dtype)).reshape(batch + (1, 1))
    return [corner[..., k] + offset for k in range(3)]


def gather_corners(values: jax.Array, triangles: jax.Array, triangle_id: jax.Array) -> jax.Array:
    """Per-pixel corner values (..., H, W, 3, C) of the triangles ``triangle_id`` (..., H, W).

    ``values`` is (N, C) shared by the batch or (..., N, C) per image; empty pixels (-1) read
    triangle 0 (callers mask them).
    """
    if values.ndim == 2:
        return values[triangles[jnp.maximum(triangle_id, 0)]]
    batch = triangle_id.shape[:-2]
    values = jnp.broadcast_to(values, batch + values.shape[-2:])
    # One plain gather from the flattened batch (a vmapped gather and its transpose compile to
    # slower batched ones on the CPU).
    corner = jnp.stack(_flat_corners(triangles, triangle_id, values.shape[-2]), axis=-1)
    return values.reshape(-1, values.shape[-1])[corner]


Corners = tuple[tuple[jax.Array, jax.Array, jax.Array, jax.Array], ...]


def _pixel_terms(corners: Corners, covered: jax.Array, image_size: tuple[int, int]):
    """Per-pixel terms of :func:`_pixel_barycentrics` from each pixel's corners (3 x clip x, y, z,
    w of (..., H, W)): per corner (lists of 3 (..., H, W) arrays) screen x, y, NDC z, 1/w,
    screen-space barycentrics; and 1 / area, 1 / sum of the barycentrics over w, pixel centres.

    Per-corner arrays with explicit sums: a reduction over a 3-long axis compiles to a slow library
    call on the CPU (~3 ms per 224 x 224 image)."""
    height, width = image_size
    x, y, z, inv_w = zip(*(_screen_components(*c, image_size) for c in corners), strict=True)
    dtype = corners[0][0].dtype
    px = jnp.arange(width, dtype=dtype)[None, :] + 0.5
    py = jnp.arange(height, dtype=dtype)[:, None] + 0.5
    edge = [
        (x[b] - x[a]) * (py - y[a]) - (y[b] - y[a]) * (px - x[a])
        for a, b in ((1, 2), (2, 0), (0, 1))
    ]  # e_k, opposite corner k
    area = (x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0])
    inv_area = 1.0 / jnp.where(covered, area, 1.0)
    screen_bary = [e * inv_area for e in edge]
    weighted = [b * w for b, w in zip(screen_bary, inv_w, strict=True)]
    inv_total = 1.0 / jnp.where(covered, weighted[0] + weighted[1] + weighted[2], 1.0)
    return x, y, z, inv_w, screen_bary, inv_area, inv_total, px, py


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _pixel_barycentrics(corners: Corners, covered: jax.Array, image_size: tuple[int, int]):
    """Perspective-correct barycentrics (..., H, W, 3) and NDC depth (..., H, W) from the clip
    positions of each pixel's corners (3 corners x 4 components of (..., H, W)); ``covered``
    (..., H, W) bool.

    A hand-written backward pass: the generated one fused the whole per-pixel chain into each of
    the 12 entries of the corners' cotangent and recomputed it per entry (~15 ms per image)."""
    return _pixel_barycentrics_fwd(corners, covered, image_size)[0]


def _pixel_barycentrics_fwd(corners, covered, image_size):
    _, _, z, inv_w, screen_bary, _, inv_total, _, _ = _pixel_terms(corners, covered, image_size)
    bary = jnp.stack(
        [
            jnp.where(covered, b * w * inv_total, 0.0)
            for b, w in zip(screen_bary, inv_w, strict=True)
        ],
        axis=-1,
    )
    ndc_depth = screen_bary[0] * z[0] + screen_bary[1] * z[1] + screen_bary[2] * z[2]
    return (bary, jnp.where(covered, ndc_depth, 1.0)), (corners, covered, bary)


def _pixel_barycentrics_bwd(image_size, residuals, cotangents):
    """Chain rule by hand, per pixel: barycentrics and depth -> screen-space barycentrics and the
    corners' 1/w and NDC z -> edge functions and area -> screen x, y -> clip x, y, z, w."""
    corners, covered, bary = residuals
    g_bary, g_depth = cotangents
    height, width = image_size
    x, y, z, inv_w, screen_bary, inv_area, inv_total, px, py = _pixel_terms(
        corners, covered, image_size
    )
    g_depth = jnp.where(covered, g_depth, 0.0)
    lam = [bary[..., k] for k in range(3)]
    g_lam = [jnp.where(covered, g_bary[..., k], 0.0) for k in range(3)]
    # bary_k = s_k w_k / sum_j s_j w_j (s: screen-space barycentrics, w = 1/w of the corner).
    g_mean = g_lam[0] * lam[0] + g_lam[1] * lam[1] + g_lam[2] * lam[2]
    g_rel = [(g - g_mean) * inv_total for g in g_lam]
    g_s = [inv_w[k] * g_rel[k] + g_depth * z[k] for k in range(3)]  # depth = sum_k s_k z_k
    g_e = [g * inv_area for g in g_s]  # s_k = e_k / area
    g_area = -(g_s[0] * screen_bary[0] + g_s[1] * screen_bary[1] + g_s[2] * screen_bary[2])
    g_area = g_area * inv_area
    g_x, g_y = [0.0] * 3, [0.0] * 3
    for k, (a, b) in enumerate(((1, 2), (2, 0), (0, 1))):
        # e_k = (x_b - x_a)(py - y_a) - (y_b - y_a)(px - x_a); area = e_0 + e_1 + e_2 in exact
        # arithmetic, its derivative in corner a's position is that of e_k without the pixel terms.
        g_x[a] = g_x[a] + g_e[k] * (y[b] - py) + g_area * (y[b] - y[k])
        g_y[a] = g_y[a] + g_e[k] * (px - x[b]) + g_area * (x[k] - x[b])
        g_x[b] = g_x[b] + g_e[k] * (py - y[a])
        g_y[b] = g_y[b] + g_e[k] * (x[a] - px)
    out = []
    for k in range(3):
        # Screen x = (X/W + 1) width/2, y = (1 - Y/W) height/2, z = Z/W, and 1/W (see _screen).
        g_clip_x = g_x[k] * (0.5 * width) * inv_w[k]
        g_clip_y = -g_y[k] * (0.5 * height) * inv_w[k]
        g_clip_z = g_depth * screen_bary[k] * inv_w[k]
        g_inv_w = screen_bary[k] * g_rel[k]
        clip_x, clip_y, clip_z, clip_w = corners[k]
        g_clip_w = -inv_w[k] * (
            g_clip_x * clip_x + g_clip_y * clip_y + g_clip_z * clip_z + g_inv_w * inv_w[k]
        )
        g_clip_w = jnp.where(clip_w > W_EPSILON, g_clip_w, 0.0)  # _screen clamps w there
        out.append((g_clip_x, g_clip_y, g_clip_z, g_clip_w))
    return tuple(out), None


_pixel_barycentrics.defvjp(_pixel_barycentrics_fwd, _pixel_barycentrics_bwd)
