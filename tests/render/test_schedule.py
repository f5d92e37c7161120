"""schedule: a batch rendered a few images per pass equals the batch in one pass, values and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import trimesh

from occface_jax.render.antialias import antialias, edge_adjacency
from occface_jax.render.camera import deng_camera, perspective_clip, rigid_transform
from occface_jax.render.interpolate import interpolate
from occface_jax.render.raster import rasterize
from occface_jax.render.schedule import map_images, resolve_images_per_pass

SIZE = 48


@pytest.mark.parametrize("per_pass", [1, 2, 3, 5, 7])
def test_map_images_equals_one_call(per_pass):
    """Groups of ``per_pass`` images (the last one padded) give what one call on all gives."""
    x = jnp.arange(5 * 3, dtype=jnp.float32).reshape(5, 3)
    y = jnp.arange(5, dtype=jnp.float32)
    seen = []

    def fn(a, b):
        seen.append(a.shape[0])
        return {"sum": a.sum(1) + b, "outer": a[:, :, None] * b[:, None, None]}

    out = map_images(fn, [x, y], per_pass)
    expected = {"sum": x.sum(1) + y, "outer": x[:, :, None] * y[:, None, None]}
    assert seen == [min(per_pass, 5)]
    for key in expected:
        np.testing.assert_array_equal(out[key], expected[key])


def test_resolve_images_per_pass():
    assert resolve_images_per_pass(3, 8) == 3
    assert resolve_images_per_pass(20, 8) == 8
    assert resolve_images_per_pass(None, 8) == (1 if jax.default_backend() == "cpu" else 8)
    with pytest.raises(ValueError, match="images_per_pass"):
        resolve_images_per_pass(0, 8)


@pytest.fixture(scope="module")
def scene():
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.9)
    vertices = jnp.asarray(mesh.vertices, jnp.float32) * jnp.asarray([90.0, 108.0, 72.0])  # mm
    triangles = jnp.asarray(mesh.faces, jnp.int32)
    angles = jnp.asarray([[0.0, 0.0, 0.0], [0.3, -0.4, 0.1], [-0.2, 0.6, 0.0]])
    shifts = jnp.asarray([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, -0.1, 0.2]])
    world = rigid_transform(vertices, angles, shifts)
    clip = perspective_clip(world, deng_camera(SIZE))
    colours = jax.random.uniform(jax.random.key(0), (3,) + vertices.shape)
    return clip, colours, triangles, jnp.asarray(edge_adjacency(np.asarray(triangles)))


@pytest.mark.parametrize("per_pass", [1, 2])
def test_images_per_pass_changes_nothing(scene, per_pass):
    """rasterize -> interpolate -> antialias of 3 images, ``per_pass`` at a time (2: a full and a
    padded pass), equals the batch in one pass: the same ids and images, the same gradients with
    respect to the positions and the colours (up to float rounding and summation order)."""
    clip, colours, triangles, adjacency = scene
    weights = jax.random.normal(jax.random.key(1), (3, SIZE, SIZE, 3))

    def loss(c, col, k):
        raster = rasterize(c, triangles, (SIZE, SIZE), images_per_pass=k)
        image = interpolate(col, raster, triangles, images_per_pass=k)
        image = antialias(image, raster, c, triangles, adjacency, images_per_pass=k)
        return jnp.sum(weights * image), (raster.triangle_id, image)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True), static_argnums=2)
    (g_clip, g_col), (ids, image) = grad(clip, colours, per_pass)
    (g_clip_all, g_col_all), (ids_all, image_all) = grad(clip, colours, 3)
    assert (ids_all >= 0).mean() > 0.2
    np.testing.assert_array_equal(ids, ids_all)
    np.testing.assert_allclose(image, image_all, atol=1e-5)
    scale = float(jnp.abs(g_clip_all).max())
    np.testing.assert_allclose(g_clip, g_clip_all, atol=1e-5 * scale)
    np.testing.assert_allclose(g_col, g_col_all, atol=1e-5)
