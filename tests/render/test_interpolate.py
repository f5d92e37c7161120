"""interpolate: exact against a direct evaluation, and its gradients against finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.morphable.synthetic import sphere_mesh
from occface_jax.render.camera import deng_camera, perspective_clip, rigid_transform
from occface_jax.render.interpolate import interpolate, interpolate_planes
from occface_jax.render.raster import Raster, barycentrics, rasterize

SIZE = 40


def _scene():
    vertices, triangles = sphere_mesh(10, 14, radius=80.0)
    world = rigid_transform(jnp.asarray(vertices), jnp.array([0.2, 0.5, 0.0]))
    clip = perspective_clip(world, deng_camera(SIZE))
    raster = jax.jit(rasterize, static_argnums=2)(clip, jnp.asarray(triangles), (SIZE, SIZE))
    return clip, jnp.asarray(triangles), raster


def test_interpolate_matches_direct_barycentric_sum():
    clip, triangles, raster = _scene()
    attrs = jax.random.normal(jax.random.key(0), (clip.shape[0], 5))
    out = np.asarray(interpolate(attrs, raster, triangles))
    ids = np.asarray(raster.triangle_id)
    corners = np.asarray(attrs)[np.asarray(triangles)[np.maximum(ids, 0)]]
    expected = np.einsum("hwk,hwkc->hwc", np.asarray(raster.bary), corners) * (ids >= 0)[..., None]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # A batch of attributes gives the same per-image result.
    pair = jax.tree.map(lambda a: jnp.stack([a, a]), raster)
    batched = interpolate(jnp.stack([attrs, 2 * attrs]), pair, triangles)
    np.testing.assert_allclose(np.asarray(batched[1]), 2 * out, atol=1e-5)
    # One plane per channel, the same values.
    planes = jax.jit(interpolate_planes)(attrs, raster, triangles)
    assert len(planes) == 5 and planes[0].shape == (SIZE, SIZE)
    np.testing.assert_allclose(np.stack(planes, axis=-1), expected, atol=1e-5)


def test_gradients_match_finite_differences():
    """With visibility fixed, d loss / d (clip positions, attributes) equals central differences."""
    clip, triangles, raster = _scene()
    ids = raster.triangle_id
    with jax.enable_x64(True):
        clip64 = jnp.asarray(np.asarray(clip), jnp.float64)
        attrs = jax.random.normal(jax.random.key(1), (clip.shape[0], 3), jnp.float64)
        weights = jax.random.normal(jax.random.key(2), (SIZE, SIZE, 3), jnp.float64)

        def loss(c, a):
            bary, depth = barycentrics(c, triangles, ids, (SIZE, SIZE))
            r = Raster(ids, bary, depth, (ids >= 0).astype(c.dtype))
            return jnp.sum(weights * interpolate(a, r, triangles)) + jnp.sum(depth)

        grad_clip, grad_attr = jax.jit(jax.grad(loss, argnums=(0, 1)))(clip64, attrs)
        loss = jax.jit(loss)
        rng = np.random.default_rng(0)
        for _ in range(4):
            direction = jnp.asarray(rng.normal(size=clip64.shape))
            h = 1e-6
            fd = (loss(clip64 + h * direction, attrs) - loss(clip64 - h * direction, attrs)) / (
                2 * h
            )
            np.testing.assert_allclose(jnp.vdot(grad_clip, direction), fd, rtol=1e-5)
            direction = jnp.asarray(rng.normal(size=attrs.shape))
            fd = (loss(clip64, attrs + h * direction) - loss(clip64, attrs - h * direction)) / (
                2 * h
            )
            np.testing.assert_allclose(jnp.vdot(grad_attr, direction), fd, rtol=1e-5)


def test_barycentrics_backward_matches_finite_differences():
    """The hand-written backward pass of the barycentrics and depth (a custom_vjp) against
    jax.test_util.check_grads, for a batch of two poses, in float64."""
    from jax.test_util import check_grads

    vertices, triangles = sphere_mesh(8, 10, radius=80.0)
    triangles = jnp.asarray(triangles)
    angles = jnp.array([[0.2, 0.5, 0.0], [-0.3, 0.1, 0.4]])
    clip = perspective_clip(rigid_transform(jnp.asarray(vertices), angles), deng_camera(SIZE))
    ids = rasterize(clip, triangles, (SIZE, SIZE)).triangle_id
    assert int((ids >= 0).sum()) > 200
    with jax.enable_x64(True):
        clip = jnp.asarray(np.asarray(clip), jnp.float64)
        weights = jax.random.normal(jax.random.key(3), ids.shape + (4,), jnp.float64)

        def outputs(c):
            bary, depth = barycentrics(c, triangles, ids, (SIZE, SIZE))
            return jnp.concatenate([bary, depth[..., None]], axis=-1) * weights

        check_grads(outputs, (clip,), order=1, modes=("rev",), eps=1e-6, atol=1e-6, rtol=1e-6)
