"""Rasterization in pure JAX: per pixel the front-most triangle, perspective-correct barycentrics and depth.

Algorithm (static shapes, no loop over pixels or triangles):

1. Triangle setup: clip-space vertices to pixel coordinates (x right, y down, pixel centres at
   integer + 0.5), snapped to a 1/256 pixel grid for the visibility decision as GPU rasterizers do.
   Triangles with a vertex at or behind the eye plane (w <= ``W_EPSILON``), degenerate ones, culled ones and
   ones whose pixel-centre bounding box misses the image get no work.
2. Every remaining triangle's bounding box is cut into ``tile`` x ``tile`` pixel tiles. Pass 1
   evaluates the first tile of every triangle (slot = triangle, no lookup): at 224 px most face
   triangles fit in one 3 x 3 tile. Pass 2 lays the remaining tiles of bigger triangles out with a
   cumulative sum and processes them in chunks of ``tile_capacity``: the first chunk always runs, more
   run in a ``lax.while_loop`` under a ``lax.cond`` only when needed, so a 200-pixel triangle costs as
   many tiles as it needs and coverage is never dropped.
3. For each candidate pixel of a tile: edge functions with the top-left fill rule, OpenGL's NDC depth
   (z/w interpolated linearly in screen space), depth clipping to [-1, 1]; then ONE scatter-min per chunk
   of packed keys (depth quantised relative to the mesh's depth range in the high bits, triangle id in the
   low bits) into a z-buffer, so the front-most triangle id falls out directly.
4. Barycentrics and depth are recomputed per pixel from the winning triangle (a gather), without
   snapping; this is the only place gradients flow (visibility is piecewise constant).

Depth ties closer than one quantum (depth range / 2**(32 - bits(F)); ~1e-4 of the range for 70k
triangles) resolve to the lower triangle id, as OpenGL's GL_LESS does for draw order.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

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
    height, width = image_size
    w = clip[..., 3]
    safe_w = jnp.where(w > W_EPSILON, w, 1.0)
    inv_w = 1.0 / safe_w
    x = (clip[..., 0] * inv_w + 1.0) * (0.5 * width)
    y = (1.0 - clip[..., 1] * inv_w) * (0.5 * height)
    return x, y, clip[..., 2] * inv_w, inv_w


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
    ``usable`` (F,) bool; ``z_lo``/``z_hi`` the NDC depth range of usable triangles.
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
    z_lo = jnp.min(jnp.where(usable, z_min, 1.0))
    z_hi = jnp.max(jnp.where(usable, z_max, -1.0))
    return planes, box, usable, z_lo, z_hi


def _rasterize_one(
    clip: jax.Array,
    triangles: jax.Array,
    image_size: tuple[int, int],
    tile: int,
    tile_capacity: int,
    cull: str,
) -> tuple[jax.Array, jax.Array]:
    """Visibility for one image: (H, W) int32 triangle ids (-1 empty), and the number of tiles used.

    Pass 1 evaluates the first tile of every triangle (slot = triangle, no lookup); pass 2 walks the
    remaining tiles of bigger triangles in chunks of ``tile_capacity`` until none is left.
    """
    height, width = image_size
    n_tri = triangles.shape[0]
    id_bits = max(1, int(n_tri).bit_length())
    depth_levels = float(2 ** (32 - id_bits) - 1)
    planes, box, usable, z_lo, z_hi = _triangle_planes(clip, triangles, image_size, cull)
    z_scale = depth_levels / jnp.maximum(z_hi - z_lo, 1e-20)
    tiles_x = jnp.where(usable, (box[2] - box[0] + tile) // tile, 0)
    tiles_y = jnp.where(usable, (box[3] - box[1] + tile) // tile, 0)
    extra = jnp.maximum(tiles_x * tiles_y - 1, 0)
    extra_end = jnp.cumsum(extra)
    n_extra = extra_end[-1]
    offset = jnp.arange(tile * tile, dtype=jnp.int32)
    off_x, off_y = offset % tile, offset // tile
    tri_ids = jnp.arange(n_tri, dtype=jnp.int32)

    def splat(zbuf, tri, pl, bx, dx, dy, valid):
        """Scatter-min the keys of candidate pixels (anchor + (dx, dy)) of triangles ``tri``;
        ``pl`` (12, T) and ``bx`` (4, T) are the planes and boxes of those triangles."""
        pl = pl[:, :, None]
        bx = bx[:, :, None]
        fx = dx.astype(jnp.float32)
        fy = dy.astype(jnp.float32)
        inside = valid & (dx <= bx[2] - bx[0]) & (dy <= bx[3] - bx[1])
        for k in range(3):
            inside &= pl[3 * k] + pl[3 * k + 1] * fx + pl[3 * k + 2] * fy > 0
        depth = pl[9] + pl[10] * fx + pl[11] * fy
        inside &= (depth >= -1.0) & (depth <= 1.0)
        level = jnp.clip((depth - z_lo) * z_scale, 0.0, depth_levels).astype(jnp.uint32)
        key = (level << id_bits) | tri.astype(jnp.uint32)[:, None]
        index = jnp.where(inside, (bx[1] + dy) * width + bx[0] + dx, height * width)
        return zbuf.at[index.reshape(-1)].min(key.reshape(-1), mode="drop")

    zbuf = jnp.full((height * width,), _EMPTY_KEY, jnp.uint32)
    zbuf = splat(zbuf, tri_ids, planes, box, off_x[None], off_y[None], usable[:, None])
    slot_ids = jnp.arange(tile_capacity, dtype=jnp.int32)
    per_triangle = jnp.concatenate(
        [planes, jax.lax.bitcast_convert_type(box, jnp.float32)]
    ).T  # (F, 16): one row gather per slot

    def body(state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        start, zbuf = state
        slot = start + slot_ids
        tri = jnp.minimum(jnp.searchsorted(extra_end, slot, side="right"), n_tri - 1)
        local = slot - (extra_end[tri] - extra[tri]) + 1  # tile index within the triangle, >= 1
        tx = jnp.maximum(tiles_x[tri], 1)
        dx = (local % tx)[:, None] * tile + off_x
        dy = (local // tx)[:, None] * tile + off_y
        rows = per_triangle[tri].T
        bx = jax.lax.bitcast_convert_type(rows[12:], jnp.int32)
        zbuf = splat(zbuf, tri, rows[:12], bx, dx, dy, (slot < n_extra)[:, None])
        return start + tile_capacity, zbuf

    # The first chunk is not in the loop (XLA's CPU while loop is slow) and is skipped when every
    # triangle fits in one tile; further chunks run only when big triangles need them.
    state = jax.lax.cond(n_extra > 0, body, lambda s: s, (jnp.int32(0), zbuf))
    _, zbuf = jax.lax.cond(
        n_extra > tile_capacity,
        lambda s: jax.lax.while_loop(lambda s: s[0] < n_extra, body, s),
        lambda s: s,
        state,
    )
    covered = zbuf != _EMPTY_KEY
    ids = (zbuf & np.uint32((1 << id_bits) - 1)).astype(jnp.int32)
    return jnp.where(covered, ids, -1).reshape(height, width), n_extra + jnp.sum(usable)


def default_tile_capacity(n_triangles: int, tile: int) -> int:
    """Tiles per while-loop chunk: enough for a face mesh at 224 px in one chunk, a multiple of 1024."""
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
) -> Raster:
    """Rasterize triangles given clip-space vertex positions.

    Args:
      clip: (..., N, 4) float32 OpenGL clip-space positions (see ``camera``); leading axes are a batch.
      triangles: (F, 3) int32 vertex indices, shared by the batch.
      image_size: static (height, width) in pixels.
      tile: static side of the square pixel tiles a triangle's bounding box is cut into.
      tile_capacity: static tiles per chunk of work (default from F); any number of tiles is processed,
        more chunks just take longer.
      cull: 'none', 'back' (drop triangles clockwise in OpenGL's window, i.e. facing away when the mesh
        is counter-clockwise seen from outside) or 'front'.

    Returns:
      :class:`Raster`; ``bary`` and ``ndc_depth`` are differentiable with respect to ``clip``.
    """
    image_size = (int(image_size[0]), int(image_size[1]))
    triangles = jnp.asarray(triangles, jnp.int32)
    capacity = tile_capacity or default_tile_capacity(triangles.shape[0], tile)
    visible = jax.lax.stop_gradient(clip)

    def one(c: jax.Array) -> jax.Array:
        return _rasterize_one(c, triangles, image_size, tile, capacity, cull)[0]

    fn = one
    for _ in range(clip.ndim - 2):
        fn = jax.vmap(fn)
    triangle_id = fn(visible)
    bary, ndc_depth = barycentrics(clip, triangles, triangle_id, image_size)
    mask = (triangle_id >= 0).astype(clip.dtype)
    return Raster(triangle_id, bary, ndc_depth, mask)


def barycentrics(
    clip: jax.Array, triangles: jax.Array, triangle_id: jax.Array, image_size: tuple[int, int]
) -> tuple[jax.Array, jax.Array]:
    """Perspective-correct barycentrics (..., H, W, 3) and NDC depth (..., H, W) at pixel centres of the
    given triangle ids (..., H, W) (-1 = empty: barycentrics 0, depth 1); differentiable in ``clip``."""
    height, width = image_size
    covered = triangle_id >= 0
    tri = jnp.where(covered, triangle_id, 0)
    corner = triangles[tri]  # (..., H, W, 3)
    batch = clip.shape[:-2]
    flat_clip = clip.reshape((-1,) + clip.shape[-2:])
    flat_corner = corner.reshape((flat_clip.shape[0], -1, 3))
    gathered = jax.vmap(lambda c, idx: c[idx])(flat_clip, flat_corner)  # (B, HW, 3, 4)
    gathered = gathered.reshape(batch + (height, width, 3, 4))
    x, y, z, inv_w = _screen(gathered, image_size)
    px = jnp.arange(width, dtype=clip.dtype) + 0.5
    py = jnp.arange(height, dtype=clip.dtype) + 0.5
    px = jnp.broadcast_to(px[None, :, None], x.shape[:-1] + (1,))
    py = jnp.broadcast_to(py[:, None, None], x.shape[:-1] + (1,))
    e0, e1, e2, area = edge_functions(x, y, px, py)
    safe_area = jnp.where(covered[..., None], area, 1.0)
    screen_bary = jnp.concatenate([e0, e1, e2], axis=-1) / safe_area
    ndc_depth = jnp.sum(screen_bary * z, axis=-1)
    weighted = screen_bary * inv_w
    bary = weighted / jnp.where(covered[..., None], jnp.sum(weighted, -1, keepdims=True), 1.0)
    bary = jnp.where(covered[..., None], bary, 0.0)
    return bary, jnp.where(covered, ndc_depth, 1.0)
