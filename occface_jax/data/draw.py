"""Small raster drawing helpers for occluders: anti-aliased polygons in float pixel coordinates.

Conventions: points are (x, y) float pixels, x right, y down, pixel (row i, col j) centred at
(j + 0.5, i + 0.5) as everywhere in the project. Coverage canvases are float32 in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4  # OpenCV sub-pixel bits: vertices are placed on a 1/16 (sub)pixel grid.
SUPERSAMPLE = (
    4  # coverage is the fraction of SUPERSAMPLE x SUPERSAMPLE sample points inside a shape
)


def _render_coverage(
    shape: tuple[int, int], points: list[np.ndarray], pad: float, paint
) -> np.ndarray:
    """Coverage (H, W) in [0, 1] of shapes drawn by ``paint(canvas, cv_points)`` on a supersampled canvas
    restricted to the bounding box of ``points`` (+ ``pad`` px), then box-averaged down."""
    out = np.zeros(shape, np.float32)
    pts = [np.asarray(p, np.float64) for p in points if len(p)]
    if not pts:
        return out
    allp = np.concatenate(pts)
    x0 = int(np.clip(np.floor(allp[:, 0].min() - pad), 0, shape[1]))
    y0 = int(np.clip(np.floor(allp[:, 1].min() - pad), 0, shape[0]))
    x1 = int(np.clip(np.ceil(allp[:, 0].max() + pad) + 1, 0, shape[1]))
    y1 = int(np.clip(np.ceil(allp[:, 1].max() + pad) + 1, 0, shape[0]))
    if x1 <= x0 or y1 <= y0:
        return out
    s = SUPERSAMPLE
    canvas = np.zeros(((y1 - y0) * s, (x1 - x0) * s), np.uint8)
    # Sample (row r, col c) of the canvas sits at pixel ((c + 0.5) / s + x0, (r + 0.5) / s + y0);
    # OpenCV puts integer coordinates at sample centres.
    offset = np.array([x0, y0], np.float64)
    cv_pts = [np.round(((p - offset) * s - 0.5) * (1 << _SHIFT)).astype(np.int32) for p in pts]
    paint(canvas, cv_pts)
    block = canvas.reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3), dtype=np.float32) / 255.0
    out[y0:y1, x0:x1] = block
    return out


def fill_polygons(shape: tuple[int, int], polygons: list[np.ndarray]) -> np.ndarray:
    """Coverage (H, W) float32 in [0, 1] of the union of filled polygons (area-exact to 1/16 px)."""
    polygons = [p for p in polygons if len(p) >= 3]

    # OpenCV fills every sample within about half a sample of the outline (rounded, inclusive ends):
    # moving edges inward by half a sample makes the filled samples those whose centre is inside.
    polygons = [inset(p, 0.5 / SUPERSAMPLE) for p in polygons]

    def paint(canvas, cv_pts):
        cv2.fillPoly(canvas, cv_pts, 255, lineType=cv2.LINE_8, shift=_SHIFT)

    return _render_coverage(shape, polygons, 1.0, paint)


def inset(polygon: np.ndarray, distance: float) -> np.ndarray:
    """``polygon`` (N, 2) with every edge moved ``distance`` px inwards (mitred corners, the miter
    length capped at 3 x ``distance`` for sharp corners)."""
    p = np.asarray(polygon, np.float64)
    area2 = np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1])
    edge = np.roll(p, -1, axis=0) - p
    edge /= np.maximum(np.linalg.norm(edge, axis=1, keepdims=True), 1e-12)
    # inward normal of each edge (y down): rotate the edge direction by -90 degrees for positive area
    normal = np.sign(area2) * np.stack([-edge[:, 1], edge[:, 0]], 1)
    n_prev, n_next = np.roll(normal, 1, axis=0), normal
    miter = (n_prev + n_next) / np.maximum(1.0 + np.sum(n_prev * n_next, 1, keepdims=True), 1e-6)
    length = np.linalg.norm(miter, axis=1, keepdims=True)
    miter = np.where(length > 3.0, miter * 3.0 / np.maximum(length, 1e-12), miter)
    return p + distance * miter


def stroke_polyline(
    shape: tuple[int, int], points: np.ndarray, thickness: float, closed: bool = False
) -> np.ndarray:
    """Coverage (H, W) float32 of a polyline ``thickness`` pixels wide (round joins)."""
    thick = max(1, round(thickness * SUPERSAMPLE))

    def paint(canvas, cv_pts):
        cv2.polylines(
            canvas, cv_pts, closed, 255, thickness=thick, lineType=cv2.LINE_8, shift=_SHIFT
        )

    return _render_coverage(shape, [points], thickness / 2 + 1, paint)


def ellipse(
    center: np.ndarray, axes: tuple[float, float], angle: float = 0.0, n: int = 64
) -> np.ndarray:
    """Polygon (n, 2) of an ellipse with semi-axes ``axes`` (pixels) rotated by ``angle`` radians."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    local = np.stack([axes[0] * np.cos(t), axes[1] * np.sin(t)], axis=1)
    return rotate(local, angle) + np.asarray(center, np.float64)


def superellipse(
    center: np.ndarray, axes: tuple[float, float], power: float, angle: float = 0.0, n: int = 64
) -> np.ndarray:
    """Polygon of a superellipse |x/a|^p + |y/b|^p = 1 (p = 2 ellipse, large p rounded rectangle)."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = axes[0] * np.sign(c) * np.abs(c) ** (2.0 / power)
    y = axes[1] * np.sign(s) * np.abs(s) ** (2.0 / power)
    return rotate(np.stack([x, y], 1), angle) + np.asarray(center, np.float64)


def capsule(
    p0: np.ndarray, p1: np.ndarray, radius0: float, radius1: float, n: int = 12
) -> np.ndarray:
    """Polygon of a tapered capsule (finger, handle) from ``p0`` to ``p1`` with end radii in pixels."""
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    direction = p1 - p0
    angle = np.arctan2(direction[1], direction[0])
    t0 = np.linspace(np.pi / 2, 3 * np.pi / 2, n)
    t1 = np.linspace(-np.pi / 2, np.pi / 2, n)
    cap0 = p0 + radius0 * np.stack([np.cos(t0 + angle), np.sin(t0 + angle)], 1)
    cap1 = p1 + radius1 * np.stack([np.cos(t1 + angle), np.sin(t1 + angle)], 1)
    return np.concatenate([cap0, cap1])


def star_blob(
    rng: np.random.Generator, center: np.ndarray, radius: float, n: int = 48, roughness: float = 0.3
) -> np.ndarray:
    """A random star-convex blob polygon: radius modulated by a few random low-frequency harmonics."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 6):
        r += roughness / k * rng.normal() * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    r = np.clip(r, 0.35, 1.8) * radius
    return np.asarray(center, np.float64) + np.stack([r * np.cos(t), r * np.sin(t)], 1)


def bezier(control: np.ndarray, n: int = 32) -> np.ndarray:
    """Points (n, 2) of a Bezier curve with control points (K, 2) (de Casteljau, vectorised over t)."""
    pts = np.broadcast_to(np.asarray(control, np.float64), (n,) + np.shape(control)).copy()
    t = np.linspace(0.0, 1.0, n)[:, None, None]
    while pts.shape[1] > 1:
        pts = (1 - t) * pts[:, :-1] + t * pts[:, 1:]
    return pts[:, 0]


def rotate(points: np.ndarray, angle: float) -> np.ndarray:
    """Points (N, 2) rotated by ``angle`` radians about the origin (clockwise on screen, y down)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.asarray(points, np.float64) @ np.array([[c, s], [-s, c]])


def dome_shading(coverage: np.ndarray, radius: float, light_dir: np.ndarray) -> np.ndarray:
    """Shading (H, W) in about [0.45, 1.1] that makes a flat shape look rounded: brighter towards its
    middle (distance to the edge, saturating at ``radius`` px) and along ``light_dir`` (2,) in image axes.
    """
    inside = (coverage > 0).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    dome = np.sqrt(np.clip(dist / max(radius, 1e-3), 0.0, 1.0))
    gy, gx = np.gradient(dist)
    directional = np.clip(gx * light_dir[0] + gy * light_dir[1], -1.0, 1.0)
    return (0.55 + 0.4 * dome + 0.15 * directional * (1 - dome)).astype(np.float32)
