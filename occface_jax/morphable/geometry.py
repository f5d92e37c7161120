"""Shape, albedo, normals and landmarks as pure functions of coefficients (batched, jit/vmap-able).

All functions broadcast over any leading batch axes of the coefficients / vertices.
Units: millimetres, model axes (x = subject's left, y = up, z = towards the camera).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from occface_jax.morphable.model import MorphableModel


def _delta(basis: jax.Array, coeffs: jax.Array) -> jax.Array:
    """basis (3N, K) @ coeffs (..., K) -> per-vertex offsets (..., N, 3)."""
    flat = jnp.einsum("rk,...k->...r", basis, coeffs)
    return flat.reshape(*flat.shape[:-1], -1, 3)


def shape(model: MorphableModel, id_coeffs: jax.Array, exp_coeffs: jax.Array) -> jax.Array:
    """Vertices (..., N, 3) in mm from identity (..., K_id) and expression (..., K_exp) coefficients."""
    offsets = _delta(model.id_basis, id_coeffs) + _delta(model.exp_basis, exp_coeffs)
    return model.mean_shape + offsets


def albedo(model: MorphableModel, tex_coeffs: jax.Array) -> jax.Array:
    """Per-vertex albedo (..., N, 3), RGB in [0, 1] for plausible coefficients (not clipped)."""
    return model.albedo_mean + _delta(model.albedo_basis, tex_coeffs)


def triangle_normals(vertices: jax.Array, triangles: jax.Array) -> jax.Array:
    """Unnormalised triangle normals (v1 - v0) x (v2 - v0), (..., F, 3); length = 2 x area."""
    v0, v1, v2 = (jnp.take(vertices, triangles[:, i], axis=-2) for i in range(3))
    return jnp.cross(v1 - v0, v2 - v0)


def vertex_normals(
    vertices: jax.Array, triangles: jax.Array, vertex_triangles: jax.Array | None = None
) -> jax.Array:
    """Unit outward vertex normals (..., N, 3): area-weighted mean of the adjacent triangle normals.

    With ``vertex_triangles`` (N, D) padded with F, a gather (as Deng et al.'s point_buf); without
    it, a scatter-add over the triangles. Isolated vertices get a zero normal.
    """
    face_n = triangle_normals(vertices, triangles)
    if vertex_triangles is not None:
        padded = jnp.concatenate([face_n, jnp.zeros_like(face_n[..., :1, :])], axis=-2)
        summed = jnp.take(padded, vertex_triangles, axis=-2).sum(axis=-2)
    else:
        summed = _scatter_normals(face_n, triangles, vertices.shape[-2])
    norm = jnp.linalg.norm(summed, axis=-1, keepdims=True)
    return summed / jnp.maximum(norm, 1e-12)


def _scatter_normals(face_n: jax.Array, triangles: jax.Array, n_vertices: int) -> jax.Array:
    """Sum each triangle's normal into its three vertices: (..., F, 3) -> (..., N, 3)."""
    out = jnp.zeros((*face_n.shape[:-2], n_vertices, 3), face_n.dtype)
    return out.at[..., triangles.reshape(-1), :].add(jnp.repeat(face_n, 3, axis=-2))


def landmarks3d(model: MorphableModel, vertices: jax.Array) -> jax.Array:
    """The 68 landmark vertices (..., 68, 3) of ``vertices`` (..., N, 3)."""
    return jnp.take(vertices, model.landmarks68, axis=-2)
