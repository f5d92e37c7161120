"""Shape, albedo, normals and landmarks: closed forms, known meshes, and jit/vmap over a batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.morphable import CoeffLayout, geometry
from occface_jax.morphable.model import build_vertex_triangles


def _octahedron():
    verts = np.array(
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float32
    )
    # Counter-clockwise seen from outside: (v1 - v0) x (v2 - v0) points away from the centre.
    tris = np.array(
        [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]],
        np.int32,
    )
    return verts, tris


def test_octahedron_normals_point_along_vertices():
    verts, tris = _octahedron()
    face_n = np.asarray(geometry.triangle_normals(jnp.asarray(verts), tris))
    centroids = verts[tris].mean(1)
    assert ((face_n * centroids).sum(1) > 0).all()  # outward winding
    np.testing.assert_allclose(np.linalg.norm(face_n, axis=1), np.sqrt(3), rtol=1e-6)  # 2 x area
    for table in (None, build_vertex_triangles(tris, 6)):
        normals = np.asarray(geometry.vertex_normals(jnp.asarray(verts), tris, table))
        np.testing.assert_allclose(normals, verts, atol=1e-6)


def test_gather_and_scatter_normals_agree_on_the_face(default_model):
    m = default_model
    verts = jnp.asarray(m.mean_shape)
    a = geometry.vertex_normals(verts, m.triangles, m.vertex_triangles)
    b = geometry.vertex_normals(verts, m.triangles)
    np.testing.assert_allclose(a, b, atol=1e-5)
    # The nose tip (landmark 30) faces the camera (+z).
    assert float(a[m.landmarks68[30], 2]) > 0.8


def test_shape_albedo_match_the_linear_formula(default_model):
    m = default_model
    rng = np.random.default_rng(0)
    a = rng.normal(size=m.n_id).astype(np.float32)
    b = rng.uniform(0, 1, size=m.n_exp).astype(np.float32)
    t = rng.normal(size=m.n_tex).astype(np.float32)
    expected = (
        m.mean_shape.ravel().astype(np.float64)
        + m.id_basis.astype(np.float64) @ a
        + m.exp_basis.astype(np.float64) @ b
    ).reshape(-1, 3)
    np.testing.assert_allclose(geometry.shape(m, a, b), expected, atol=2e-3)
    expected_tex = (m.albedo_mean.ravel() + m.albedo_basis @ t).reshape(-1, 3)
    np.testing.assert_allclose(geometry.albedo(m, t), expected_tex, atol=1e-5)
    verts = geometry.shape(m, a, b)
    np.testing.assert_array_equal(geometry.landmarks3d(m, verts), np.asarray(verts)[m.landmarks68])


def test_jit_vmap_batch_equals_per_item(toy_model):
    model = toy_model.to_jax()
    layout = CoeffLayout.for_model(model)
    coeffs = layout.split(jax.random.normal(jax.random.key(1), (5, layout.size)))

    def forward(model, c):
        verts = geometry.shape(model, c["id"], c["exp"])
        return (
            verts,
            geometry.vertex_normals(verts, model.triangles, model.vertex_triangles),
            geometry.albedo(model, c["tex"]),
        )

    batched = jax.jit(forward)(model, coeffs)
    mapped = jax.jit(jax.vmap(forward, in_axes=(None, 0)))(model, coeffs)
    for i in range(5):
        single = forward(model, jax.tree.map(lambda x, i=i: x[i], coeffs))
        for got_b, got_m, want in zip(batched, mapped, single, strict=True):
            np.testing.assert_allclose(got_b[i], want, atol=1e-5)
            np.testing.assert_allclose(got_m[i], want, atol=1e-5)
    # Gradients through the model flow to the coefficients.
    grad = jax.grad(lambda c: forward(model, c)[0].sum())(coeffs)
    assert np.isfinite(grad["id"]).all() and np.abs(grad["id"]).sum() > 0


def test_face_only_crop_is_consistent(default_model):
    face = default_model.face_only()
    full = default_model
    np.testing.assert_array_equal(
        face.mean_shape[face.landmarks68], full.mean_shape[full.landmarks68]
    )
    assert face.n_vertices < full.n_vertices and face.face_triangles.size > 0
    verts = face.mean_shape
    assert face.triangles.max() < face.n_vertices
    np.testing.assert_array_equal(face.triangles[face.face_triangles].shape[1], 3)
    # Every triangle of the crop is a triangle of the full model (same corner positions).
    tri_pos = np.sort(verts[face.triangles].reshape(len(face.triangles), -1), axis=1)
    full_pos = np.sort(full.mean_shape[full.triangles].reshape(full.n_triangles, -1), axis=1)
    full_set = {row.tobytes() for row in full_pos}
    assert all(row.tobytes() in full_set for row in tri_pos[:200])
