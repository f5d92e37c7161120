"""The per-vertex texture: the photo weight's ring shrink, and the albedo-only texture."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from occface_jax.morphable import CoeffLayout
from occface_jax.morphable.rendering import shaded_vertices
from occface_jax.render import deng_camera
from occface_jax.texture.vertex import photo_weight, vertex_texture


def test_photo_weight_shrinks_one_ring_per_step(toy_model):
    """Visible vertices keep weight 1 three rings in from the edge of the visible patch, fall
    smoothly towards it, and hidden ones stay 0."""
    m = toy_model
    z = np.asarray(m.mean_shape)[:, 2]
    visible = z > np.median(z)
    weight = np.asarray(photo_weight(jnp.asarray(visible), m.triangles, m.vertex_triangles))
    assert weight[~visible].max() == 0.0
    assert weight.min() >= 0 and weight.max() == 1.0
    assert 0 < ((weight > 0) & (weight < 1)).sum() < visible.sum()
    np.testing.assert_array_equal(
        photo_weight(jnp.asarray(visible), m.triangles, m.vertex_triangles, rings=0), visible
    )
    shrunk_more = photo_weight(jnp.asarray(visible), m.triangles, m.vertex_triangles, rings=5)
    assert (np.asarray(shrunk_more) <= weight + 1e-7).all()


def test_without_the_photo_every_vertex_takes_the_shaded_albedo(toy_model):
    m = toy_model.to_jax()
    coeffs = CoeffLayout.for_model(toy_model).zeros()
    image = jnp.zeros((64, 64, 3))
    maps = jnp.zeros((64, 64))
    colors, visible, vertices = vertex_texture(
        m, coeffs, deng_camera(64), image, maps, maps, maps, 0.8, from_photo=False
    )
    shaded = shaded_vertices(m, coeffs, 0.8)
    np.testing.assert_allclose(colors, np.clip(shaded.colour, 0, 1), atol=1e-6)
    np.testing.assert_allclose(vertices, shaded.vertices)
    assert not np.asarray(visible).any()
