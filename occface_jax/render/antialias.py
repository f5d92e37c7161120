"""Silhouette antialiasing in the manner of nvdiffrast's ``antialias``: analytic edge blending so that
image losses get gradients with respect to the vertex positions of the outline.

For every pair of horizontally or vertically adjacent pixels (o, u) where the triangle T covering o
does not cover u, the edges of T crossed on the segment from o's centre to u's are found from T's edge
functions; the first crossing, at fraction ``t`` of the way to u, is used when it lies on a silhouette
edge of T (a mesh boundary or an edge whose neighbour faces the other way on screen) and u's surface
(or the background) is behind T. The boundary then splits the two pixels' box footprints: if
``t < 0.5`` pixel o is only partly covered and its colour moves towards u's by ``0.5 - t``; otherwise
u is partly covered and moves towards o's by ``t - 0.5``. ``t`` is a smooth function of the projected
vertices, so the blended image is continuous in them where the plain raster is piecewise constant.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.render.raster import Raster, _screen
from occface_jax.render.schedule import map_images, resolve_images_per_pass

_NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1))
_SNAP_SLACK = 1.0 / 64.0
_FULL_HOPS = 4  # hops on all pixel pairs before the walks still going are compacted
_COMPACT = 8  # the compacted list holds 1/_COMPACT of the pairs
_UNROLL_CHANNELS = 16  # colour channels blended one by one (see _antialias_one)


def edge_adjacency(triangles: np.ndarray) -> np.ndarray:
    """(F, 3) int32: for edge k of each triangle (the edge opposite vertex k), the triangle sharing it,
    or -1 on a mesh boundary or a non-manifold edge. Topology only: compute once per mesh (numpy)."""
    triangles = np.asarray(triangles, np.int64)
    n_tri = triangles.shape[0]
    a = triangles[:, [1, 2, 0]].reshape(-1)
    b = triangles[:, [2, 0, 1]].reshape(-1)
    key = np.minimum(a, b) * (int(triangles.max(initial=0)) + 1) + np.maximum(a, b)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    same_next = sorted_key[1:] == sorted_key[:-1]
    run_start = np.concatenate([[True], ~same_next])
    run_id = np.cumsum(run_start) - 1
    run_len = np.bincount(run_id)
    first = np.flatnonzero(run_start)
    out = np.full(3 * n_tri, -1, np.int64)
    pairs = first[run_len == 2]
    e0, e1 = order[pairs], order[pairs + 1]
    out[e0] = e1 // 3
    out[e1] = e0 // 3
    return out.reshape(n_tri, 3).astype(np.int32)


def _shift(a: jax.Array, dx: int, dy: int, fill) -> jax.Array:
    """out[i, j] = a[i + dy, j + dx] over the first two axes, ``fill`` outside the image."""
    pad = [(max(-dy, 0), max(dy, 0)), (max(-dx, 0), max(dx, 0))] + [(0, 0)] * (a.ndim - 2)
    padded = jnp.pad(a, pad, constant_values=fill)
    h, w = a.shape[:2]
    row0, col0 = max(dy, 0), max(dx, 0)
    return padded[row0 : row0 + h, col0 : col0 + w]


class _Pair(NamedTuple):
    """Per walk (pixel pair o -> u) constants, arrays of one shape: o's centre, the orientation sign
    of o's triangle, the step (ox, oy) to u, whether it is horizontal, u's triangle id, and the NDC
    depth that o's surface must be in front of at u (u's depth less the depth gap)."""

    px: jax.Array
    py: jax.Array
    sign: jax.Array
    ox: jax.Array
    oy: jax.Array
    horizontal: jax.Array
    other_id: jax.Array
    other_depth: jax.Array


def _edge_terms(x: jax.Array, y: jax.Array, z: jax.Array, pair: _Pair):
    """From corner x, y, z (..., 3): edge functions normalised positive inside (orientation of the
    start triangle) at the pixel centres o and at u = o + (ox, oy); the NDC depth of the triangle's
    plane at u; and per edge whether its normal is nearer this pair's axis."""
    e_o, e_u, along = [], [], []
    for a, b in ((1, 2), (2, 0), (0, 1)):
        dx = x[..., b] - x[..., a]
        dy = y[..., b] - y[..., a]
        value = pair.sign * (dx * (pair.py - y[..., a]) - dy * (pair.px - x[..., a]))
        e_o.append(value)
        e_u.append(value + pair.sign * (dx * pair.oy - dy * pair.ox))
        along.append(
            jnp.where(pair.horizontal, jnp.abs(dy) >= jnp.abs(dx), jnp.abs(dx) > jnp.abs(dy))
        )
    signed_area = pair.sign * (e_o[0] + e_o[1] + e_o[2])
    safe_area = jnp.where(signed_area != 0, signed_area, 1.0)
    depth_u = sum(pair.sign * e * z[..., k] for k, e in enumerate(e_u)) / safe_area
    return e_o, e_u, depth_u, along


def _hop(table: jax.Array, pair: _Pair, state: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
    """One step of the silhouette walk for every pair: find where the segment o -> u leaves the
    current triangle; stop there if that edge is a silhouette in front of u, else cross it."""
    tri, active, found, tri_hit, edge_hit = state
    rows = table[tri]  # (..., 15)
    e_o, e_u, depth_u, along = _edge_terms(rows[..., 0:3], rows[..., 3:6], rows[..., 6:9], pair)
    fractions = []  # where the segment leaves the triangle through each edge; 2 = never
    for eo, eu in zip(e_o, e_u, strict=True):
        leaving = eu < eo
        denominator = jnp.where(leaving, eo - eu, 1.0)
        fractions.append(jnp.where(leaving, jnp.clip(eo, 0.0) / denominator, 2.0))
    # The first edge the segment leaves through (argmin, first on ties), unrolled.
    t, edge = fractions[0], jnp.zeros_like(tri)
    for k in (1, 2):
        better = fractions[k] < t
        t = jnp.where(better, fractions[k], t)
        edge = jnp.where(better, k, edge)
    pick = [edge == 0, edge == 1]

    def select(values):
        return jnp.where(pick[0], values[0], jnp.where(pick[1], values[1], values[2]))

    neighbour = jax.lax.bitcast_convert_type(
        select([rows[..., 9 + k] for k in range(3)]), tri.dtype
    )
    silhouette = select([rows[..., 12 + k] for k in range(3)]) > 0
    other_id = pair.other_id
    in_front = (other_id == -1) | ((other_id >= 0) & (depth_u < pair.other_depth))
    # Each edge is blended across one axis only (as nvdiffrast), so coverage is not counted twice.
    axis_ok = select(along)
    # u's centre may lie just past the edge in unsnapped coordinates while the rasterizer
    # (1/256-pixel grid) has not covered it yet: accept a small overshoot (clipped later).
    hit = active & ~found & (t <= 1.0 + _SNAP_SLACK) & silhouette & in_front & axis_ok
    tri_hit = jnp.where(hit, tri, tri_hit)
    edge_hit = jnp.where(hit, edge, edge_hit)
    found = found | hit
    active = active & ~found & (t <= 1.0) & ~silhouette
    tri = jnp.where(active, neighbour, tri)
    return tri, active, found, tri_hit, edge_hit


def _walk_loop(table, pair, state, hops: int) -> tuple[jax.Array, ...]:
    """Up to ``hops`` hops while any walk is active (a while loop: the walk is discrete)."""
    return jax.lax.while_loop(
        lambda c: (c[0] < hops) & jnp.any(c[1][1]),
        lambda c: (c[0] + 1, _hop(table, pair, c[1])),
        (0, state),
    )[1]


def _walk(table, pair: _Pair, state, hops: int) -> tuple[jax.Array, ...]:
    """The silhouette walk of all pairs (arrays of one shape), at most ``hops`` hops.

    Most walks end within a few hops (a face's outline: ~2/3 of the active ones stop at each hop),
    a few cross a dozen sub-pixel triangles. So the first ``_FULL_HOPS`` hops run on all pairs, the
    walks still going are then compacted into a list of 1/``_COMPACT`` of the pairs for the rest,
    and any beyond that list (none on a face) finish on the full arrays: the same result as walking
    every pair for ``hops`` hops, at a fraction of the cost.
    """
    full = min(hops, _FULL_HOPS)
    for _ in range(full):
        state = _hop(table, pair, state)
    if hops == full:
        return state
    shape = state[0].shape
    size = max(1, state[0].size // _COMPACT)
    flat = [a.reshape(-1) for a in state]
    flat_pair = _Pair(*(a.reshape(-1) for a in pair))
    picked = jnp.nonzero(flat[1], size=size, fill_value=flat[1].shape[0])[0]
    take = jnp.minimum(picked, flat[1].shape[0] - 1)
    sub_state = tuple(a[take] for a in flat)
    sub_state = (sub_state[0], sub_state[1] & (picked < flat[1].shape[0])) + sub_state[2:]
    sub_state = _walk_loop(table, _Pair(*(a[take] for a in flat_pair)), sub_state, hops - full)
    # Walks that did not fit in the list (normally none: zero iterations) go on where they are.
    rest = list(flat)
    rest[1] = rest[1].at[picked].set(False, mode="drop")
    rest = _walk_loop(table, flat_pair, tuple(rest), hops - full)
    merged = tuple(a.at[picked].set(b, mode="drop") for a, b in zip(rest, sub_state, strict=True))
    return tuple(a.reshape(shape) for a in merged)


def _antialias_one(
    color: jax.Array,
    triangle_id: jax.Array,
    ndc_depth: jax.Array,
    clip: jax.Array,
    triangles: jax.Array,
    adjacency: jax.Array,
    hops: int,
    capacity: int,
    depth_gap: float,
) -> jax.Array:
    height, width = triangle_id.shape
    n_pix = height * width
    sx, sy, sz, _ = _screen(clip, (height, width))
    c0, c1, c2 = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    area = (sx[c1] - sx[c0]) * (sy[c2] - sy[c0]) - (sy[c1] - sy[c0]) * (sx[c2] - sx[c0])
    facing = jnp.sign(jax.lax.stop_gradient(area))

    fixed = tuple(jax.lax.stop_gradient(c) for c in (sx, sy, sz))
    # Candidate pixels: covered, with a neighbour that is background or clearly behind.
    covered = triangle_id >= 0
    candidate = jnp.zeros_like(covered)
    for ox, oy in _NEIGHBOURS:
        other_id = _shift(triangle_id, ox, oy, -2)
        gap = _shift(ndc_depth, ox, oy, -jnp.inf) - ndc_depth
        candidate |= (other_id == -1) | ((other_id >= 0) & (gap > depth_gap))
    candidate &= covered
    overflow = jnp.maximum(jnp.sum(candidate, dtype=jnp.int32) - capacity, 0)
    pixel = jnp.nonzero(candidate.reshape(-1), size=capacity, fill_value=n_pix)[0]
    valid = pixel < n_pix
    pixel = jnp.minimum(pixel, n_pix - 1)
    row, col = pixel // width, pixel % width
    flat_id = triangle_id.reshape(-1)
    flat_depth = ndc_depth.reshape(-1)
    flat_color = color.reshape(n_pix, -1)
    start = flat_id[pixel]
    sign = facing[jnp.maximum(start, 0)]
    px = col.astype(sx.dtype) + 0.5
    py = row.astype(sx.dtype) + 0.5
    own_color = flat_color[pixel]

    # The four neighbour directions side by side: arrays (4, C), one walk and one scatter for all.
    ox = jnp.asarray([d[0] for d in _NEIGHBOURS], jnp.int32)[:, None]
    oy = jnp.asarray([d[1] for d in _NEIGHBOURS], jnp.int32)[:, None]
    u_row, u_col = row + oy, col + ox  # (4, C)
    inside_image = (u_row >= 0) & (u_row < height) & (u_col >= 0) & (u_col < width)
    other = jnp.where(inside_image, u_row * width + u_col, 0)
    other_id = jnp.where(inside_image, flat_id[other], -2)
    # A silhouette blends over u's surface only where that is clearly behind (``depth_gap``, as
    # for the candidates), so that eager, jitted and differentiated graphs blend alike.
    other_depth = flat_depth[other] - depth_gap
    active = valid & (other_id != start) & (other_id != -2)
    # Per walk (pixel pair) constants, each (4, C): o's centre, the start triangle's orientation,
    # the step to u, whether the pair is horizontal, u's triangle and the depth to be in front of.
    shape = active.shape
    pair = _Pair(
        *(
            jnp.broadcast_to(a, shape)
            for a in (px, py, sign, ox.astype(sx.dtype), oy.astype(sx.dtype), ox != 0)
        ),
        other_id,
        other_depth,
    )

    # One row per triangle for the walk (no gradients): corner x, y, z, the neighbour across each
    # edge and whether that edge is a silhouette (boundary, or the neighbour faces the other way;
    # the walk only crosses non-silhouette edges, so the current triangle faces as the start one).
    corner_xyz = jnp.stack([c[triangles] for c in fixed], axis=1).reshape(-1, 9)  # (F, 9)
    edge_silhouette = (adjacency < 0) | (facing[jnp.maximum(adjacency, 0)] != facing[:, None])
    table = jnp.concatenate(
        [
            corner_xyz,
            jax.lax.bitcast_convert_type(adjacency, corner_xyz.dtype),
            edge_silhouette.astype(corner_xyz.dtype),
        ],
        axis=1,
    )  # (F, 15)

    # Walk from o's triangle along the segment o -> u across shared edges to a silhouette edge
    # (a discrete search, without gradients), then place the crossing differentiably.
    first = jnp.broadcast_to(jnp.maximum(start, 0), shape)
    init = (first, active, jnp.zeros_like(active), first, jnp.zeros_like(first))
    _, _, found, tri_hit, edge_hit = _walk(table, pair, init, hops)
    corner = triangles[tri_hit]  # the crossing's triangle, with differentiable positions
    e_o, e_u, _, _ = _edge_terms(sx[corner], sy[corner], sz[corner], pair)
    eo = jnp.take_along_axis(jnp.stack(e_o, -1), edge_hit[..., None], axis=-1)[..., 0]
    eu = jnp.take_along_axis(jnp.stack(e_u, -1), edge_hit[..., None], axis=-1)[..., 0]
    t_found = jnp.clip(eo, 0.0) / jnp.where(found & (eo > eu), eo - eu, 1.0)
    t = jnp.where(found, jnp.clip(t_found, 0.0, 1.0), 0.5)
    own = 0.5 - jnp.minimum(t, 0.5)  # (4, C)
    spill = jnp.maximum(t, 0.5) - 0.5
    difference = flat_color[other] - own_color  # (4, C, channels): u's colour less o's
    n_channels = difference.shape[-1]
    if n_channels <= _UNROLL_CHANNELS:
        # Channel by channel: the backward pass then sums the fractions' cotangents as explicit
        # products, where a broadcast over the channel axis needed a reduction over that short
        # axis, a slow library call on the CPU (~2 ms per 224 x 224 image).
        own_delta = jnp.stack([own * difference[..., c] for c in range(n_channels)], axis=-1)
        spill_delta = jnp.stack([-spill * difference[..., c] for c in range(n_channels)], axis=-1)
    else:
        own_delta = own[..., None] * difference
        spill_delta = -spill[..., None] * difference
    keep = valid[..., None]
    delta = jnp.concatenate([jnp.where(keep, own_delta, 0.0), jnp.where(keep, spill_delta, 0.0)])
    index = jnp.concatenate([jnp.broadcast_to(pixel, other.shape), other])
    out = flat_color.at[index.reshape(-1)].add(delta.reshape(-1, delta.shape[-1]))
    return out.reshape(color.shape), overflow


def antialias(
    color: jax.Array,
    raster: Raster,
    clip: jax.Array,
    triangles: jax.Array,
    adjacency: jax.Array,
    *,
    hops: int = 24,
    capacity: int | None = None,
    depth_gap: float = 0.01,
    return_overflow: bool = False,
    images_per_pass: int | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Blend colours across silhouette edges so that the image is continuous in the vertex positions.

    Args:
      color: (..., H, W, C) shaded image (e.g. from ``interpolate``), background included.
      raster: the ``Raster`` the colours come from (same batch and size).
      clip: (..., N, 4) clip-space positions that were rasterized.
      triangles: (F, 3) int32.
      adjacency: (F, 3) int32 from :func:`edge_adjacency` (computed once per topology).
      hops: static; how many triangles the search walks from a pixel's triangle towards its
        neighbour pixel to find the silhouette edge (sub-pixel triangles at the outline need > 1).
      capacity: static number of outline pixels processed per image (default max(1024, H W / 16)): next
        to the background or to a surface more than ``depth_gap`` (NDC) behind. Outline pixels beyond
        it are left unblended (no silhouette gradient there); the default is far above a face's.
        Pass ``return_overflow=True`` to see how many were left out.
      depth_gap: static NDC depth by which a surface must lie behind a silhouette to count as
        behind it: for picking the outline pixels and for blending the silhouette over it (a fold's
        own continuation just behind it would otherwise be a near-tie decided by float rounding).
      return_overflow: static; also return the number of outline pixels per image (...,) int32 that
        did not fit in ``capacity`` (0 when none was dropped). Costs one sum per image; jit-friendly,
        e.g. ``jax.debug.print`` it or check it on the host.
      images_per_pass: static; how many images of the batch one pass covers (default 1 on the CPU,
        the whole batch elsewhere; see ``occface_jax.render.schedule``). The result does not
        depend on it.

    Returns:
      (..., H, W, C) antialiased colours, differentiable with respect to ``color`` and ``clip``; with
      ``return_overflow``, the pair (colours, overflow).
    """
    batch = color.shape[:-3]
    flat = (-1,)
    args = (
        color.reshape(flat + color.shape[-3:]),
        raster.triangle_id.reshape(flat + raster.triangle_id.shape[-2:]),
        raster.ndc_depth.reshape(flat + raster.ndc_depth.shape[-2:]),
        jnp.broadcast_to(clip, batch + clip.shape[-2:]).reshape(flat + clip.shape[-2:]),
    )
    height, width = color.shape[-3:-1]
    cap = min(height * width, capacity or max(1024, height * width // 16))
    one_pass = jax.vmap(
        lambda c, i, d, p: _antialias_one(c, i, d, p, triangles, adjacency, hops, cap, depth_gap)
    )
    per_pass = resolve_images_per_pass(images_per_pass, args[0].shape[0])
    out, overflow = map_images(one_pass, args, per_pass)
    out = out.reshape(color.shape)
    return (out, overflow.reshape(batch)) if return_overflow else out


@lru_cache(maxsize=8)
def _adjacency_cached(key: bytes, shape: tuple[int, ...]) -> np.ndarray:
    return edge_adjacency(np.frombuffer(key, np.int32).reshape(shape))


def mesh_adjacency(triangles) -> jax.Array:
    """Edge adjacency of ``triangles`` (cached per topology; needs concrete triangles)."""
    tri = np.ascontiguousarray(np.asarray(triangles, np.int32))
    return jnp.asarray(_adjacency_cached(tri.tobytes(), tri.shape))
