"""rasterize against OpenGL (moderngl / llvmpipe) on the default face model and big-triangle meshes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.render.camera import deng_camera, perspective_clip, rigid_transform
from occface_jax.render.raster import _rasterize_flat, rasterize


def _compare(raster, gl_ids, gl_depth) -> tuple[float, float]:
    """(fraction of covered pixels with the same triangle id, max window-depth error on those pixels
    relative to the covered depth range)."""
    ids = np.asarray(raster.triangle_id)
    covered = (ids >= 0) | (gl_ids >= 0)
    agree = float(np.mean(ids[covered] == gl_ids[covered]))
    same = (ids == gl_ids) & (ids >= 0)
    window_depth = (np.asarray(raster.ndc_depth) + 1.0) / 2.0
    depth_range = gl_depth[gl_ids >= 0].max() - gl_depth[gl_ids >= 0].min()
    return agree, float(np.abs(window_depth - gl_depth)[same].max() / depth_range)


def big_quads(seed: int = 0, n_quads: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping, tilted, perspective quads spanning 50-150 % of the view (clip space)."""
    rng = np.random.default_rng(seed)
    verts, tris = [], []
    for _ in range(n_quads):
        centre = rng.uniform(-0.5, 0.5, 2)
        size = rng.uniform(0.5, 1.5)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * size / 2 + centre
        corners = corners + rng.normal(0, 0.05, (4, 2))
        w = rng.uniform(1.0, 3.0, 4)
        z = rng.uniform(-0.9, 0.9, 4) * w
        base = len(verts)
        verts += [[corners[k, 0] * w[k], corners[k, 1] * w[k], z[k], w[k]] for k in range(4)]
        tris += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    return np.array(verts, np.float32), np.array(tris, np.int32)


@pytest.fixture(scope="module")
def face(default_model):
    return np.asarray(default_model.mean_shape), np.asarray(default_model.triangles)


@pytest.mark.parametrize(
    "angles, translation",
    [
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ((0.2, 0.6, 0.1), (0.1, -0.2, 0.5)),
        ((-0.3, -1.2, -0.2), (-0.3, 0.1, -1.0)),
    ],
)
def test_face_matches_opengl(face, gl_rasterize, angles, translation):
    vertices, triangles = face
    world = rigid_transform(jnp.asarray(vertices), jnp.asarray(angles), jnp.asarray(translation))
    clip = perspective_clip(world, deng_camera(224))
    raster = rasterize(clip, triangles, (224, 224))
    gl_ids, gl_depth = gl_rasterize(np.asarray(clip), triangles, (224, 224))
    agree, depth_err = _compare(raster, gl_ids, gl_depth)
    assert (gl_ids >= 0).sum() > 5000
    assert agree >= 0.995
    assert depth_err <= 1e-3


@pytest.mark.parametrize("first", [2, 3])
def test_both_first_passes_match_opengl(face, gl_rasterize, first):
    """Pass 1 covers 2 x 2 or 3 x 3 pixels of each triangle (chosen per pass from the triangles'
    sizes); either way the face at 224 px (a third of its triangles bigger than 3 x 3) matches."""
    vertices, triangles = face
    world = rigid_transform(jnp.asarray(vertices), jnp.asarray([0.1, 0.4, 0.0]))
    clip = perspective_clip(world, deng_camera(224))
    ids, _ = jax.jit(
        lambda c: _rasterize_flat(
            c[None], jnp.asarray(triangles), (224, 224), 3, 8192, "none", first
        )
    )(clip)
    gl_ids, _ = gl_rasterize(np.asarray(clip), triangles, (224, 224))
    assert (gl_ids >= 0).sum() > 5000
    assert np.mean(np.asarray(ids[0])[gl_ids >= 0] == gl_ids[gl_ids >= 0]) >= 0.995


@pytest.mark.parametrize("image_size", [(224, 224), (90, 160)])
def test_big_triangles_match_opengl(gl_rasterize, image_size):
    clip, triangles = big_quads()
    # A small tile capacity forces many chunks of the tile loop: coverage must still be complete.
    raster = rasterize(jnp.asarray(clip), triangles, image_size, tile_capacity=256)
    gl_ids, gl_depth = gl_rasterize(clip, triangles, image_size)
    agree, depth_err = _compare(raster, gl_ids, gl_depth)
    assert (gl_ids >= 0).mean() > 0.5
    assert agree >= 0.995
    assert depth_err <= 1e-3


def test_backface_culling_matches_opengl(face, gl_rasterize):
    vertices, triangles = face
    world = rigid_transform(jnp.asarray(vertices), jnp.asarray([0.1, 0.9, 0.0]))
    clip = perspective_clip(world, deng_camera(128))
    raster = rasterize(clip, triangles, (128, 128), cull="back")
    gl_ids, gl_depth = gl_rasterize(np.asarray(clip), triangles, (128, 128), cull_back=True)
    agree, _ = _compare(raster, gl_ids, gl_depth)
    assert agree >= 0.995


def test_behind_camera_and_offscreen(gl_rasterize):
    clip, triangles = big_quads(seed=1, n_quads=3)
    # One triangle entirely off-screen to the right, one with a vertex behind the eye (w < 0).
    extra = np.array(
        [
            [3.0, 0.0, 0.0, 1.0],
            [4.0, 0.5, 0.0, 1.0],
            [3.5, -0.5, 0.0, 1.0],
            [-0.5, -0.5, 0.0, 1.0],
            [0.5, -0.5, 0.0, 1.0],
            [0.0, 0.5, 0.5, -0.5],
        ],
        np.float32,
    )
    n = clip.shape[0]
    clip = np.concatenate([clip, extra])
    triangles = np.concatenate([triangles, [[n, n + 1, n + 2], [n + 3, n + 4, n + 5]]]).astype(
        np.int32
    )
    raster = rasterize(jnp.asarray(clip), triangles, (64, 64))
    ids = np.asarray(raster.triangle_id)
    assert not np.isin(ids, [len(triangles) - 2, len(triangles) - 1]).any()
    # Everything else matches OpenGL where OpenGL did not draw the clipped triangle.
    gl_ids, _ = gl_rasterize(clip[:n], triangles[:-2], (64, 64))
    assert np.mean(ids == gl_ids) >= 0.995


def test_batch_equals_single_images(face):
    vertices, triangles = face
    angles = jnp.array([[0.0, 0.0, 0.0], [0.1, -0.5, 0.2]])
    world = rigid_transform(jnp.asarray(vertices), angles, jnp.zeros((2, 3)))
    clip = perspective_clip(world, deng_camera(64))
    batch = jax.jit(lambda c: rasterize(c, triangles, (64, 64)))(clip)
    for i in range(2):
        single = rasterize(clip[i], triangles, (64, 64))
        np.testing.assert_array_equal(batch.triangle_id[i], single.triangle_id)
        np.testing.assert_allclose(batch.bary[i], single.bary, atol=1e-4)


@pytest.mark.parametrize("images_per_pass", [3, 2])
def test_batch_of_big_triangles_equals_single_images(images_per_pass):
    """A pass covers several images as one pass over their B x F triangles; many tile chunks,
    shared between images with different needs, give each image what it gives alone (3: the
    whole batch in one pass, 2: a full pass and a padded one)."""
    quads = [big_quads(seed) for seed in (2, 3, 4)]
    clip = jnp.stack([jnp.asarray(q[0]) for q in quads])
    clip = clip.at[1].multiply(jnp.array([0.3, 0.3, 1.0, 1.0]))  # smaller: fewer tiles
    triangles = quads[0][1]
    batch = rasterize(
        clip, triangles, (90, 160), tile_capacity=256, images_per_pass=images_per_pass
    )
    for i in range(3):
        single = rasterize(clip[i], triangles, (90, 160), tile_capacity=256)
        np.testing.assert_array_equal(batch.triangle_id[i], single.triangle_id)
        np.testing.assert_allclose(batch.ndc_depth[i], single.ndc_depth, atol=1e-6)


def test_barycentrics_are_perspective_correct(face):
    """Interpolating world positions with ``bary`` and projecting them lands on the pixel centre."""
    vertices, triangles = face
    world = rigid_transform(jnp.asarray(vertices), jnp.asarray([0.0, 0.4, 0.0]))
    camera = deng_camera(96)
    raster = rasterize(perspective_clip(world, camera), triangles, (96, 96))
    covered = np.asarray(raster.triangle_id) >= 0
    corners = np.asarray(world)[
        np.asarray(triangles)[np.maximum(np.asarray(raster.triangle_id), 0)]
    ]
    points = np.einsum("hwk,hwkc->hwc", np.asarray(raster.bary), corners)
    w = camera.distance - points[..., 2]
    u = 48.0 + float(camera.focal) * points[..., 0] / w
    v = 48.0 - float(camera.focal) * points[..., 1] / w
    cols, rows = np.meshgrid(np.arange(96) + 0.5, np.arange(96) + 0.5)
    assert np.abs(u - cols)[covered].max() < 2e-3
    assert np.abs(v - rows)[covered].max() < 2e-3
    np.testing.assert_allclose(np.asarray(raster.bary).sum(-1)[covered], 1.0, atol=1e-5)
