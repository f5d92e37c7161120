"""Camera conventions against scipy's rotations and Deng et al.'s projection formula."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from occface_jax.render.camera import (
    DENG_ORTHO_SCALE,
    clip_to_pixels,
    deng_camera,
    euler_to_rotation,
    ortho_clip,
    perspective_clip,
    project_perspective,
    rigid_transform,
    scaled_ortho_pixels,
)


def test_rotation_is_extrinsic_xyz():
    """R = Rz(roll) Ry(yaw) Rx(pitch): scipy's extrinsic 'xyz' Euler angles."""
    angles = np.random.default_rng(0).uniform(-1.5, 1.5, (5, 3))
    ours = np.asarray(euler_to_rotation(jnp.asarray(angles, jnp.float32)))
    np.testing.assert_allclose(ours, Rotation.from_euler("xyz", angles).as_matrix(), atol=1e-6)


def test_perspective_matches_deng_formula_at_any_size():
    points = np.random.default_rng(1).uniform(-1.0, 1.0, (20, 3)).astype(np.float32)
    for size in (224, 448):
        camera = deng_camera(size)
        focal = 1015.0 * size / 224
        u = size / 2 + focal * points[:, 0] / (10.0 - points[:, 2])
        v = size / 2 - focal * points[:, 1] / (10.0 - points[:, 2])
        pixels = np.asarray(project_perspective(jnp.asarray(points), camera))
        np.testing.assert_allclose(pixels, np.stack([u, v], 1), rtol=1e-5, atol=1e-3)
        clip = perspective_clip(jnp.asarray(points), camera)
        np.testing.assert_allclose(clip_to_pixels(clip, (size, size)), pixels, atol=1e-3)
        # OpenGL depth: the near (5 dm) and far (15 dm) planes map to -1 and 1.
        w = np.asarray(clip[:, 3])
        expected = (20.0 / 10.0) - 2.0 * 15.0 * 5.0 / (10.0 * w)
        np.testing.assert_allclose(clip[:, 2] / clip[:, 3], expected, atol=1e-5)


def test_rigid_transform_converts_mm_to_dm():
    v = jnp.array([[100.0, 0.0, 0.0]])
    out = rigid_transform(v, jnp.array([0.0, np.pi / 2, 0.0]), jnp.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(out, [[0.0, 0.0, 0.0]], atol=1e-6)  # x -> -z by yaw 90, then +1 dm


def test_scaled_ortho_matches_perspective_framing_near_the_origin():
    """With scale 1.015 px/mm the orthographic image of points near z = 0 is Deng's perspective one."""
    points = np.random.default_rng(2).uniform(-0.5, 0.5, (10, 3)).astype(np.float32)
    points[:, 2] = 0.0
    ortho = scaled_ortho_pixels(
        jnp.asarray(points), jnp.zeros(3), jnp.array([DENG_ORTHO_SCALE]), jnp.array([3.0, -2.0])
    )
    persp = project_perspective(rigid_transform(jnp.asarray(points), jnp.zeros(3)), deng_camera())
    np.testing.assert_allclose(ortho[:, :2], persp + jnp.array([3.0, -2.0]), atol=1e-3)
    clip = ortho_clip(ortho, (224, 224))
    np.testing.assert_allclose(clip_to_pixels(clip, (224, 224)), ortho[:, :2], atol=1e-3)
