"""MorphableModel's texture coordinates: content-keyed static metadata, face cropping, jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.morphable.model import ARRAY_FIELDS, UVMap
from occface_jax.morphable.synthetic import triangle_atlas


def test_uv_map_is_content_keyed_and_read_only():
    coords, tris = triangle_atlas(4)
    a, b = UVMap(coords, tris, (8, 16)), UVMap(coords.copy(), tris.copy(), (8, 16))
    assert a == b and hash(a) == hash(b) and a != UVMap(coords, tris, (16, 16))
    assert not a.coords.flags.writeable and a.texture_size == (8, 16)


def test_face_only_keeps_uvs_consistent(toy_model):
    coords, tris = triangle_atlas(toy_model.n_triangles)
    model = toy_model.replace(uv=UVMap(coords, tris, (64, 64)))
    face = model.face_only()
    assert face.uv.triangles.shape == face.triangles.shape
    # Corner by corner, the face model's UVs are the full model's UVs of the same triangle.
    full_tri = {tuple(sorted(t)): i for i, t in enumerate(np.asarray(model.triangles).tolist())}
    keep = np.flatnonzero(
        model.face_region | np.isin(np.arange(model.n_vertices), model.landmarks68)
    )
    for f in (0, face.n_triangles // 2, face.n_triangles - 1):
        original = keep[face.triangles[f]]
        i = full_tri[tuple(sorted(original.tolist()))]
        np.testing.assert_array_equal(model.triangles[i], original)
        np.testing.assert_array_equal(face.uv.coords[face.uv.triangles[f]], coords[tris[i]])
    assert face.uv.coords.shape[0] == np.unique(face.uv.triangles).size  # compacted


def test_model_with_uvs_is_a_jit_argument(toy_model):
    coords, tris = triangle_atlas(toy_model.n_triangles)
    model = toy_model.replace(uv=UVMap(coords, tris, (64, 64))).to_jax()
    traces = []

    @jax.jit
    def mean_z(m):
        traces.append(1)
        return jnp.mean(m.mean_shape[:, 2])

    mean_z(model)
    mean_z(model.replace(uv=UVMap(coords.copy(), tris.copy(), (64, 64))))  # equal content
    assert len(traces) == 1
    leaves = jax.tree_util.tree_leaves(model)
    assert len(leaves) == len(ARRAY_FIELDS) == 12  # the array fields; UVs are not traced
    assert jax.tree_util.tree_map(lambda x: x, model).uv == model.uv
