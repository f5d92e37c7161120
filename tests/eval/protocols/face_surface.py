"""Synthetic ground truth for the protocols' known-answer tests: a smooth face-like height field
(mm; a broad dome, a nose bump, a little asymmetry so that ICP has a unique answer), meshed on
grids, noisy scans of it, and known similarities to move predictions by."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z (mm) of the face-like surface at (x, y) mm; the nose tip is its maximum."""
    dome = 40.0 * np.exp(-(x**2 + y**2) / (2 * 45.0**2))
    nose = 18.0 * np.exp(-(x**2 + (y + 5.0) ** 2) / (2 * 15.0**2))
    return dome + nose + 0.002 * x * y + 0.001 * x**2


def normals(x: np.ndarray, y: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Unit normals (..., 3) of the height field (finite differences)."""
    zx = (height(x + eps, y) - height(x - eps, y)) / (2 * eps)
    zy = (height(x, y + eps) - height(x, y - eps)) / (2 * eps)
    n = np.stack([-zx, -zy, np.ones_like(x)], axis=-1)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def grid_mesh(n: int, extent: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices (n n, 3), triangles, (x, y) (n n, 2)) of the surface on an n x n grid over
    [-extent, extent]^2."""
    g = np.linspace(-extent, extent, n)
    x, y = (a.ravel() for a in np.meshgrid(g, g))
    vertices = np.stack([x, y, height(x, y)], axis=1)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    triangles = np.concatenate(
        [np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)]
    )
    return vertices, triangles.astype(np.int32), np.stack([x, y], axis=1)


def noisy_scan(n: int, extent: float, sigma: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(scan vertices displaced along the surface normal by N(0, sigma^2), triangles)."""
    vertices, triangles, xy = grid_mesh(n, extent)
    noise = np.random.default_rng(seed).normal(0.0, sigma, len(vertices))
    return vertices + noise[:, None] * normals(xy[:, 0], xy[:, 1]), triangles


def similarity(scale: float, degrees: tuple[float, float, float], shift: tuple[float, ...]):
    """(s, R, t) as ``eval.metrics.surface`` uses them."""
    rot = Rotation.from_euler("xyz", degrees, degrees=True).as_matrix()
    return scale, rot, np.asarray(shift, np.float64)


def inverse_apply(sim, points: np.ndarray) -> np.ndarray:
    """Points p such that s R p + t = ``points``."""
    s, rot, t = sim
    return (np.asarray(points) - t) @ rot / s
