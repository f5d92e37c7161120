"""Irregular free-form hole masks, as the free-form inpainting GANs (DeepFill v2, EdgeConnect) train on:
a few random brush strokes, each a polyline of random vertices drawn with a round brush.

A stroke starts at a uniform point of the box with a uniform heading and brush width; each following
vertex turns the heading by a uniform angle in +/- ``max_turn`` and steps a uniform length. A step
that would leave the box (less half the brush) is mirrored back off its walls, so strokes bounce
inside the box instead of piling up on its edges. Segments are drawn with round caps, so joints are
round and a stroke is one connected blob. Lengths and widths are fractions of the box's size (the
geometric mean of its sides): the masks look the same at any resolution.

Masks are (H, W) float32 {0, 1}: a pixel is in the hole when its centre is under the brush (the
anti-aliased coverage of ``draw.stroke_polyline`` at least one half), and only pixels whose centres are
inside the box can be.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from occface_jax.data import draw

Box = tuple[float, float, float, float]


def box_region(shape: tuple[int, int], box: Box | None = None) -> np.ndarray:
    """(H, W) float32 {0, 1}: the pixels whose centres (x, y) lie in ``box`` (x0, y0, x1, y1), pixels,
    as x0 <= x < x1 and y0 <= y < y1 (the whole image when None)."""
    h, w = shape
    if box is None:
        return np.ones((h, w), np.float32)
    x0, y0, x1, y1 = box
    cols = (np.arange(w) + 0.5 >= x0) & (np.arange(w) + 0.5 < x1)
    rows = (np.arange(h) + 0.5 >= y0) & (np.arange(h) + 0.5 < y1)
    return (rows[:, None] & cols[None, :]).astype(np.float32)


def region_box(region: np.ndarray) -> Box | None:
    """The bounding box (x0, y0, x1, y1) in pixels of a region (H, W) (> 0.5 = inside), pixel edges
    included; None for an empty region."""
    inside = np.asarray(region) > 0.5
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if not len(rows):
        return None
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def mask_ratio(mask: np.ndarray, region: np.ndarray | None = None) -> float:
    """Fraction of ``region``'s pixels (> 0.5; the whole image when None) that ``mask`` (> 0.5) covers;
    0 for an empty region."""
    hole = np.asarray(mask) > 0.5
    inside = np.ones_like(hole) if region is None else np.asarray(region) > 0.5
    total = int(inside.sum())
    return float((hole & inside).sum() / total) if total else 0.0


def _reflect(value: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``value`` mirrored back into [lo, hi] off its walls (a triangle wave; any overshoot)."""
    span = np.maximum(hi - lo, 1e-9)
    t = np.mod(value - lo, 2.0 * span)
    return lo + span - np.abs(t - span)


def stroke_vertices(
    rng: np.random.Generator,
    box: Box,
    n_vertices: int,
    length: tuple[float, float],
    max_turn: float,
    margin: float,
) -> np.ndarray:
    """Vertices (n, 2) (x, y px) of one stroke's random walk inside ``box`` shrunk by ``margin`` px:
    step lengths uniform in ``length`` px, heading turns uniform in +/- ``max_turn`` radians."""
    x0, y0, x1, y1 = box
    lo = np.array([x0 + margin, y0 + margin])
    hi = np.maximum(np.array([x1 - margin, y1 - margin]), lo)
    point = rng.uniform(lo, hi)
    heading = rng.uniform(0.0, 2.0 * np.pi)
    points = [point]
    for _ in range(n_vertices - 1):
        heading += rng.uniform(-max_turn, max_turn)
        step = rng.uniform(*length) * np.array([np.cos(heading), np.sin(heading)])
        new = _reflect(point + step, lo, hi)
        moved = new - point
        if np.hypot(*moved) > 1e-9:  # carry on in the direction actually taken (after a bounce)
            heading = float(np.arctan2(moved[1], moved[0]))
        points.append(new)
        point = new
    return np.stack(points)


def free_form_mask(
    rng: np.random.Generator,
    shape: tuple[int, int],
    box: Box | Sequence[float] | None = None,
    strokes: tuple[int, int] = (1, 4),
    vertices: tuple[int, int] = (4, 10),
    length: tuple[float, float] = (0.08, 0.25),
    width: tuple[float, float] = (0.05, 0.14),
    max_turn: float = 0.6 * np.pi,
) -> np.ndarray:
    """A free-form hole mask (H, W) float32 {0, 1} of ``shape`` (H, W), all randomness from ``rng``.

    ``box`` (x0, y0, x1, y1) pixels (e.g. a face's box; the whole image when None) holds the strokes.
    ``strokes`` and ``vertices`` (per stroke): inclusive integer ranges; ``length`` (per segment) and
    ``width`` (brush diameter, per stroke): uniform ranges as fractions of the box's size
    sqrt(width * height); ``max_turn``: the largest heading change at a vertex, radians.
    """
    h, w = shape
    if box is None:
        box = (0.0, 0.0, float(w), float(h))
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"free-form mask box {tuple(box)} does not overlap a {h}x{w} image")
    size = float(np.sqrt((x1 - x0) * (y1 - y0)))
    length_px = (length[0] * size, length[1] * size)
    mask = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(strokes[0], strokes[1] + 1))):
        n = int(rng.integers(vertices[0], vertices[1] + 1))
        # a brush at least 1 px wide and no wider than the box
        brush = float(np.clip(rng.uniform(*width) * size, 1.0, min(x1 - x0, y1 - y0)))
        points = stroke_vertices(rng, (x0, y0, x1, y1), n, length_px, max_turn, brush / 2)
        mask = np.maximum(mask, draw.stroke_polyline(shape, points, brush))
    return (mask >= 0.5).astype(np.float32) * box_region(shape, (x0, y0, x1, y1))
