"""Point-to-mesh distances against brute force, and alignment recovering a known similarity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from occface_jax.eval.metrics import surface
from occface_jax.morphable.synthetic import sphere_mesh


def _brute_force(points, vertices, triangles):
    # Dense barycentric sampling of every triangle: an independent, approximate reference.
    g = np.linspace(0, 1, 41)
    u, v = np.meshgrid(g, g)
    keep = u + v <= 1
    u, v = u[keep], v[keep]
    tri = vertices[triangles]
    samples = (
        tri[:, 0, None] * (1 - u - v)[:, None]
        + tri[:, 1, None] * u[:, None]
        + tri[:, 2, None] * v[:, None]
    ).reshape(-1, 3)
    return np.linalg.norm(points[:, None] - samples[None], axis=2).min(1)


def test_closest_point_matches_dense_sampling():
    rng = np.random.default_rng(0)
    verts, tris = sphere_mesh(6, 8, radius=10.0)
    points = rng.normal(size=(40, 3)) * 8
    _, dist = surface.closest_points_on_mesh(points, verts, tris)
    ref = _brute_force(points, verts.astype(np.float64), tris)
    assert np.all(dist <= ref + 1e-9)  # exact distance never exceeds a sampled one
    np.testing.assert_allclose(dist, ref, atol=0.15)  # sampling step ~ 0.1 of an edge


def test_single_triangle_regions():
    tri = np.array([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]])
    pts = np.array([[0.2, 0.2, 1.0], [-1.0, -1.0, 0.0], [2.0, -0.5, 0.0], [0.7, 0.7, 0.0]])
    out = surface.closest_points_on_triangles(pts, np.repeat(tri, 4, 0))
    np.testing.assert_allclose(out, [[0.2, 0.2, 0], [0, 0, 0], [1, 0, 0], [0.5, 0.5, 0]])


def test_icp_recovers_a_similarity():
    verts, tris = sphere_mesh(10, 14, radius=50.0)
    verts = verts * np.array([1.0, 1.3, 0.8])  # an ellipsoid: rotation is observable
    rot = Rotation.from_euler("xyz", [0.2, -0.3, 0.1]).as_matrix()
    scan = 1.7 * verts @ rot.T + np.array([5.0, -3.0, 2.0])
    lms = verts[::7]
    noisy = scan[::7] + np.random.default_rng(1).normal(0, 1.0, lms.shape)
    dist = surface.scan_to_mesh_error(verts, tris, lms, scan, noisy)
    assert dist.mean() < 0.05 * 1.7 * 50 * 0.1


def test_aligned_vertex_distances_remove_only_the_pose():
    rng = np.random.default_rng(3)
    truth = rng.normal(size=(50, 3)) * 20
    rot = Rotation.from_euler("xyz", [0.3, 0.5, -0.2]).as_matrix()
    moved = truth @ rot.T + np.array([4.0, -7.0, 1.0])
    # A rigid copy is 0 away after alignment; a scaled copy is not unless scale is allowed.
    np.testing.assert_allclose(surface.aligned_vertex_distances(moved, truth), 0, atol=1e-9)
    scaled = 1.5 * moved
    assert surface.aligned_vertex_distances(scaled, truth).mean() > 1.0
    np.testing.assert_allclose(
        surface.aligned_vertex_distances(scaled, truth, scale=True), 0, atol=1e-9
    )
    # By hand: two points at +-1 on x, predicted at +-2 (no scale): the best rigid fit leaves each
    # point 1 off; with scale, none.
    pair = np.array([[-1.0, 0, 0], [1.0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(surface.aligned_vertex_distances(2 * pair, pair), [1, 1, 0])


def test_point_to_plane_distances_and_the_open_boundary_by_hand():
    # The unit square in z = 0 (two triangles): its four outer edges are open, the diagonal not.
    verts = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    assert surface.boundary_edges(tris).tolist() == [[True, True, False], [False, True, True]]
    pts = np.array([[0.3, 0.2, 0.5], [0.5, 0.5, -0.25], [2.0, 0.5, 1.0], [0.5, -1.0, 0.0]])
    dist, inside = surface.point_to_plane_distances(pts, verts, tris)
    # Above the square: the height; beyond an edge: the residual along the normal only.
    np.testing.assert_allclose(dist, [0.5, 0.25, 1.0, 0.0], atol=1e-12)
    assert inside.tolist() == [True, True, False, False]


def test_point_to_plane_icp_recovers_a_similarity_in_few_rounds():
    verts, tris = sphere_mesh(12, 16, radius=50.0)
    verts = verts * np.array([1.0, 1.3, 0.8])
    rot = Rotation.from_euler("xyz", [0.1, -0.15, 0.05]).as_matrix()
    truth = (1.2, rot, np.array([5.0, -3.0, 2.0]))
    scan = surface.apply_similarity(truth, verts)[::3]
    start = (1.0, np.eye(3), np.zeros(3))
    for scale in (True, False):
        sim = surface.refine_similarity(start, verts, tris, scan, 8, 100.0, scale, True)
        if scale:
            assert sim[0] == pytest.approx(1.2, rel=1e-3)
            np.testing.assert_allclose(sim[1], rot, atol=2e-3)
        else:
            assert sim[0] == 1.0  # rigid: the scale never moves
    moved = surface.apply_similarity(
        surface.refine_similarity(start, verts, tris, scan, 8, 100.0, True, True), verts
    )
    assert surface.closest_points_on_mesh(scan, moved, tris)[1].max() < 0.05


def test_vertex_to_scan_distances_are_the_heights_above_a_dense_plane():
    """Scan points on a 0.1 mm grid of z = 0; vertices at heights 0.5 and 2 mm above its inside
    are that far from it, a vertex 30 mm beyond the grid's edge is beyond ``max_mm``: NaN."""
    g = np.linspace(-10.0, 10.0, 201)
    scan = np.stack([*np.meshgrid(g, g), np.zeros((201, 201))], axis=-1).reshape(-1, 3)
    vertices = np.array([[1.23, -4.56, 0.5], [0.0, 7.77, -2.0], [40.0, 0.0, 0.0]])
    dist = surface.vertex_to_scan_distances(vertices, scan, max_mm=10.0)
    np.testing.assert_allclose(dist[:2], [0.5, 2.0], atol=3e-3)  # grid spacing: <= 0.07 mm off
    assert np.isnan(dist[2])
    assert surface.vertex_to_scan_distances(vertices, scan)[2] == pytest.approx(30.0)
