"""antialias: silhouette gradients checked against finite differences and the area formula."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from occface_jax.morphable.synthetic import sphere_mesh
from occface_jax.render.antialias import antialias, edge_adjacency
from occface_jax.render.camera import deng_camera, perspective_clip
from occface_jax.render.raster import rasterize

SIZE = 48


def test_edge_adjacency_matches_brute_force():
    _, triangles = sphere_mesh(6, 8)
    triangles = np.concatenate([triangles, [[0, 1, 50]]])  # a dangling triangle: two boundary edges
    adjacency = edge_adjacency(triangles)
    for f, tri in enumerate(triangles):
        for k in range(3):
            edge = {tri[(k + 1) % 3], tri[(k + 2) % 3]}
            others = [g for g, t in enumerate(triangles) if g != f and edge <= set(t)]
            assert adjacency[f, k] == (others[0] if len(others) == 1 else -1)


@pytest.fixture(scope="module")
def sphere():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.9)  # dm: ~21 px radius at 48 px
    vertices = np.asarray(mesh.vertices, np.float32)
    triangles = np.asarray(mesh.faces, np.int32)
    return jnp.asarray(vertices), jnp.asarray(triangles), jnp.asarray(edge_adjacency(triangles))


def _coverage(sphere, shift_px: jax.Array, scale: jax.Array) -> jax.Array:
    """Antialiased mask (H, W) of the sphere scaled by ``scale`` and shifted by ``shift_px`` pixels."""
    vertices, triangles, adjacency = sphere
    clip = perspective_clip(vertices * scale, deng_camera(SIZE))
    clip = clip.at[:, 0].add(shift_px * 2.0 / SIZE * clip[:, 3])
    raster = rasterize(clip, triangles, (SIZE, SIZE))
    return antialias(raster.mask[..., None], raster, clip, triangles, adjacency)[..., 0]


def test_silhouette_gradient_of_translation(sphere):
    """d/dt sum(x * mask) = area for a shift t along x; the raster mask alone has no such gradient."""
    x = jnp.arange(SIZE, dtype=jnp.float32) + 0.5

    @jax.jit
    def moment(t):
        return jnp.sum(_coverage(sphere, t, 1.0) * x[None, :])

    t0 = jnp.float32(0.37)
    grad = float(jax.jit(jax.grad(moment))(t0))
    h = 0.25
    finite = float((moment(t0 + h) - moment(t0 - h)) / (2 * h))
    area = float(jax.jit(lambda t: jnp.sum(_coverage(sphere, t, 1.0)))(t0))
    assert area > 500
    assert grad == pytest.approx(finite, rel=0.03)
    assert grad == pytest.approx(area, rel=0.03)


def test_silhouette_gradient_of_scale(sphere):
    """d area / d scale = 2 area / scale for a (nearly) uniformly scaled outline."""

    @jax.jit
    def area(s):
        return jnp.sum(_coverage(sphere, 0.13, s))

    s0 = jnp.float32(1.0)
    grad = float(jax.jit(jax.grad(area))(s0))
    h = 0.02
    finite = float((area(s0 + h) - area(s0 - h)) / (2 * h))
    assert grad == pytest.approx(finite, rel=0.05)
    assert grad == pytest.approx(2.0 * float(area(s0)), rel=0.08)


def test_capacity_overflow_is_counted(sphere):
    """Outline pixels beyond ``capacity`` are reported, not silently dropped from view."""
    vertices, triangles, adjacency = sphere
    clip = perspective_clip(vertices, deng_camera(SIZE))

    @jax.jit
    def run(c):
        raster = rasterize(c, triangles, (SIZE, SIZE))
        mask = raster.mask[..., None]
        plain = antialias(mask, raster, c, triangles, adjacency)
        full, none = antialias(mask, raster, c, triangles, adjacency, return_overflow=True)
        small, some = antialias(
            mask, raster, c, triangles, adjacency, capacity=16, return_overflow=True
        )
        return mask, plain, full, none, small, some

    mask, plain, full, none, small, some = run(clip)
    assert int(none) == 0
    np.testing.assert_allclose(full, plain, atol=1e-5)  # counting changes nothing
    # The sphere's outline pixels (next to the background or to its own far side) minus the 16.
    assert 100 < int(some) < SIZE * SIZE
    assert float(jnp.sum(jnp.abs(small - mask))) < float(jnp.sum(jnp.abs(full - mask)))
