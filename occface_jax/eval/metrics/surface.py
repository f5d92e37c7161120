"""Point-to-surface distances and alignments for scan-to-mesh evaluation (NoW / MICC style).

All functions are numpy, vectorised over points (no loop over points or triangles); units are those
of the inputs.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def closest_points_on_triangles(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Closest point on each triangle to each point: ``points`` (..., 3), ``tri`` (..., 3, 3).

    Region-based closed form (Ericson, Real-Time Collision Detection, 5.1.5), broadcast over ``...``.
    """
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    ab, ac, ap = b - a, c - a, points - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = points - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = points - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1.0 / (va + vb + vc)
        v_face, w_face = vb * denom, vc * denom
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    out = a + ab * v_face[..., None] + ac * w_face[..., None]
    # Later assignments take priority: edges over the face, vertices over edges.
    on_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
    out = np.where(on_bc[..., None], b + (c - b) * t_bc[..., None], out)
    on_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    out = np.where(on_ac[..., None], a + ac * t_ac[..., None], out)
    on_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    out = np.where(on_ab[..., None], a + ab * t_ab[..., None], out)
    out = np.where(((d6 >= 0) & (d5 <= d6))[..., None], c, out)
    out = np.where(((d3 >= 0) & (d4 <= d3))[..., None], b, out)
    out = np.where(((d1 <= 0) & (d2 <= 0))[..., None], a, out)
    return out


def closest_points_on_mesh(
    points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, candidates: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """(closest surface points (P, 3), distances (P,)) from ``points`` to a triangle mesh.

    Exact among the ``candidates`` triangles whose centroids are nearest each point (a KD-tree);
    on meshes of roughly uniform triangles the true closest triangle is among them.
    """
    tri = np.asarray(vertices, np.float64)[np.asarray(triangles)]
    tree = cKDTree(tri.mean(axis=1))
    k = min(candidates, len(tri))
    _, idx = tree.query(points, k=k)
    idx = idx.reshape(len(points), k)
    pts = np.asarray(points, np.float64)[:, None, :]
    closest = closest_points_on_triangles(pts, tri[idx])  # (P, k, 3)
    dist = np.linalg.norm(closest - pts, axis=-1)
    best = dist.argmin(axis=1)
    rows = np.arange(len(points))
    return closest[rows, best], dist[rows, best]


def similarity_transform(src: np.ndarray, dst: np.ndarray, scale: bool = True):
    """Umeyama: (s, R, t) minimising sum ||s R src_i + t - dst_i||^2 (s = 1 when not ``scale``)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    s = float(np.trace(np.diag(sig) @ d) / (a**2).sum(1).mean()) if scale else 1.0
    return s, rot, mu_d - s * rot @ mu_s


def apply_similarity(sim, points: np.ndarray) -> np.ndarray:
    """``s R p + t`` for each point (..., 3) of ``points``, ``sim`` = (s, R, t) as returned by
    :func:`similarity_transform`."""
    s, rot, t = sim
    return s * np.asarray(points) @ rot.T + t


def aligned_vertex_distances(
    predicted: np.ndarray, truth: np.ndarray, scale: bool = False
) -> np.ndarray:
    """Per-vertex distances (N,) between corresponding vertices (N, 3) after the least-squares
    rigid alignment (rotation + translation; + scale with ``scale``) of ``predicted`` onto
    ``truth``, fitted on all the vertices; units of the inputs. Its mean is the usual "mean vertex
    error after alignment" of synthetic benchmarks."""
    moved = apply_similarity(similarity_transform(predicted, truth, scale=scale), predicted)
    return np.linalg.norm(moved - truth, axis=1)


def scan_to_mesh_error(
    vertices: np.ndarray,
    triangles: np.ndarray,
    landmarks: np.ndarray,
    scan_points: np.ndarray,
    scan_landmarks: np.ndarray,
    iterations: int = 15,
    trim: float = 95.0,
) -> np.ndarray:
    """Distances from ``scan_points`` to the mesh after a landmark similarity alignment refined by
    ICP with scale (each round: closest surface points, best similarity on the pairs within the
    ``trim`` percentile). ``landmarks`` / ``scan_landmarks`` are corresponding (L, 3) points."""
    sim = similarity_transform(landmarks, scan_landmarks)
    for _ in range(iterations):
        moved = apply_similarity(sim, vertices)
        closest, dist = closest_points_on_mesh(scan_points, moved, triangles)
        keep = dist <= np.percentile(dist, trim)
        step = similarity_transform(closest[keep], scan_points[keep])
        sim = (step[0] * sim[0], step[1] @ sim[1], step[0] * step[1] @ sim[2] + step[2])
    return closest_points_on_mesh(scan_points, apply_similarity(sim, vertices), triangles)[1]
