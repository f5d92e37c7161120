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
    points: np.ndarray,
    vertices: np.ndarray,
    triangles: np.ndarray,
    candidates: int = 24,
    return_triangles: bool = False,
) -> tuple[np.ndarray, ...]:
    """(closest surface points (P, 3), distances (P,)) from ``points`` to a triangle mesh, and with
    ``return_triangles`` the index (P,) of the triangle each closest point lies on.

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
    if return_triangles:
        return closest[rows, best], dist[rows, best], idx[rows, best]
    return closest[rows, best], dist[rows, best]


def boundary_edges(triangles: np.ndarray) -> np.ndarray:
    """(F, 3) bool: edge e of triangle f (corners e, e + 1) belongs to no other triangle."""
    tris = np.asarray(triangles)
    a, b = tris, np.roll(tris, -1, axis=1)
    keys = np.minimum(a, b).astype(np.int64) * (int(tris.max()) + 1) + np.maximum(a, b)
    _, inverse, counts = np.unique(keys.ravel(), return_inverse=True, return_counts=True)
    return (counts[inverse] == 1).reshape(tris.shape)


def point_to_plane_distances(
    points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(distances (P,), inside (P,) bool) of ``points`` to a mesh, point-to-plane: the residual
    along the normal of the plane of the triangle holding each point's closest surface point (its
    point-to-surface distance when that lies inside a triangle, less on an edge). ``inside`` is
    False where the closest point lies on the mesh's open boundary: the point is beyond the
    surface's extent (outside the two surfaces' intersection)."""
    vertices = np.asarray(vertices, np.float64)
    points = np.asarray(points, np.float64)
    closest, _, face = closest_points_on_mesh(points, vertices, triangles, return_triangles=True)
    tri = vertices[np.asarray(triangles)[face]]  # (P, 3, 3)
    normal = triangle_normals(vertices, triangles)[face]
    distance = np.abs(((points - closest) * normal).sum(1))
    # Barycentric weight of the corner opposite each edge: ~0 when the closest point is on it.
    edges = tri[:, [1, 2, 0]] - tri  # edge e runs from corner e to e + 1
    to_point = closest[:, None] - tri
    cross = np.cross(edges, to_point)
    area = np.linalg.norm(np.cross(edges[:, 0], -edges[:, 2]), axis=1)[:, None]
    length = np.maximum(np.linalg.norm(edges, axis=2), 1e-30)
    off_edge = np.linalg.norm(cross, axis=2) / length  # distance of the closest point to each edge
    on_edge = off_edge <= 1e-6 * np.sqrt(np.maximum(area, 1e-30))
    inside = ~(on_edge & boundary_edges(triangles)[face]).any(axis=1)
    return distance, inside


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


def triangle_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Unit normals (F, 3) of a mesh's triangles (counter-clockwise corners: outward)."""
    tri = np.asarray(vertices, np.float64)[np.asarray(triangles)]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-30)


def _rodrigues(omega: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(omega))
    if angle < 1e-15:
        return np.eye(3)
    k = omega / angle
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def _plane_step(closest: np.ndarray, target: np.ndarray, normal: np.ndarray, scale: bool):
    """The similarity (s, R, t) that, linearised, moves ``closest`` to minimise the squared
    point-to-plane residuals ((s R c + t - q) . n): one Gauss-Newton step (7 or 6 unknowns)."""
    centre = closest.mean(0)
    c = closest - centre
    columns = [np.cross(c, normal), normal]
    if scale:
        columns.insert(0, (c * normal).sum(1, keepdims=True))
    a = np.concatenate(columns, axis=1)
    b = -((closest - target) * normal).sum(1)
    x = np.linalg.lstsq(a, b, rcond=None)[0]
    ds = x[0] if scale else 0.0
    omega, shift = x[-6:-3], x[-3:]
    rot, s = _rodrigues(omega), 1.0 + ds
    # about the centre: q = s R (p - centre) + centre + shift
    return s, rot, centre + shift - s * rot @ centre


def refine_similarity(
    sim: tuple[float, np.ndarray, np.ndarray],
    vertices: np.ndarray,
    triangles: np.ndarray,
    scan_points: np.ndarray,
    iterations: int = 15,
    trim: float = 95.0,
    scale: bool = True,
    point_to_plane: bool = False,
) -> tuple[float, np.ndarray, np.ndarray]:
    """ICP from ``sim`` (s, R, t, moving the mesh onto the scan): each round, the closest surface
    points of the moved mesh to ``scan_points`` and, on the pairs within the ``trim`` percentile
    of distance, the best similarity (rigid when not ``scale``), composed onto ``sim``. The best
    is point-to-point (Umeyama), or with ``point_to_plane`` one linearised step on the residuals
    along the closest triangles' normals (far fewer rounds on smooth surfaces, where point-to-point
    ICP slides and shrinks slowly)."""
    for _ in range(iterations):
        moved = apply_similarity(sim, vertices)
        closest, dist, face = closest_points_on_mesh(
            scan_points, moved, triangles, return_triangles=True
        )
        keep = dist <= np.percentile(dist, trim)
        if point_to_plane:
            normal = triangle_normals(moved, triangles)[face]
            step = _plane_step(closest[keep], scan_points[keep], normal[keep], scale)
        else:
            step = similarity_transform(closest[keep], scan_points[keep], scale=scale)
        sim = (step[0] * sim[0], step[1] @ sim[1], step[0] * step[1] @ sim[2] + step[2])
    return sim


def scan_to_mesh_error(
    vertices: np.ndarray,
    triangles: np.ndarray,
    landmarks: np.ndarray,
    scan_points: np.ndarray,
    scan_landmarks: np.ndarray,
    iterations: int = 15,
    trim: float = 95.0,
    scale: bool = True,
) -> np.ndarray:
    """Distances from ``scan_points`` to the mesh after a landmark similarity alignment refined by
    ICP with scale (each round: closest surface points, best similarity on the pairs within the
    ``trim`` percentile). ``landmarks`` / ``scan_landmarks`` are corresponding (L, 3) points.
    ``scale=False``: rigid alignment throughout (metrical evaluation, both in mm)."""
    sim = scan_to_mesh_alignment(
        vertices, triangles, landmarks, scan_points, scan_landmarks, iterations, trim, scale
    )
    return closest_points_on_mesh(scan_points, apply_similarity(sim, vertices), triangles)[1]


def scan_to_mesh_alignment(
    vertices: np.ndarray,
    triangles: np.ndarray,
    landmarks: np.ndarray,
    scan_points: np.ndarray,
    scan_landmarks: np.ndarray,
    iterations: int = 15,
    trim: float = 95.0,
    scale: bool = True,
) -> tuple:
    """The similarity (s, R, t) moving the mesh onto the scan that :func:`scan_to_mesh_error`
    scores (same arguments)."""
    sim = similarity_transform(landmarks, scan_landmarks, scale=scale)
    return refine_similarity(sim, vertices, triangles, scan_points, iterations, trim, scale)


def vertex_to_scan_distances(
    vertices: np.ndarray, scan_points: np.ndarray, max_mm: float = np.inf
) -> np.ndarray:
    """(N,) distance (mm) from each vertex (N, 3) to the nearest scan point (M, 3); NaN where it
    is beyond ``max_mm`` (a vertex the scan does not cover, e.g. outside its crop)."""
    dist = cKDTree(np.asarray(scan_points, np.float64)).query(np.asarray(vertices, np.float64))[0]
    return np.where(dist <= max_mm, dist, np.nan)
