"""Jaw landmarks that follow the outline: checked against the rasterizer's own silhouette."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from occface_jax.morphable import CoeffLayout, contour
from occface_jax.morphable.rendering import project, project_landmarks, render
from occface_jax.render import deng_camera
from occface_jax.render.camera import euler_to_rotation

CHEEKS = np.r_[0:5, 12:17]  # the lines that may run outwards (outline within 37 deg of horizontal)


@pytest.fixture(scope="module")
def face(default_model):
    model = default_model.face_only()
    return model, model.to_jax(), contour.for_model(model), CoeffLayout.for_model(model)


@pytest.fixture(scope="module")
def draw(face):
    """Jitted renders at 224 px of the face model: draw(coeffs, marched) -> Rendering."""
    _, jmodel, jaw, _ = face
    fixed = jax.jit(lambda c: render(jmodel, c, deng_camera(224)))
    marched = jax.jit(lambda c: render(jmodel, c, deng_camera(224), jaw=jaw))
    return lambda coeffs, march: (marched if march else fixed)(coeffs)


def _posed(layout, pitch_deg: float, yaw_deg: float) -> dict[str, jax.Array]:
    coeffs = layout.zeros()
    coeffs["angles"] = jnp.array([np.radians(pitch_deg), np.radians(yaw_deg), 0.0])
    return coeffs


def _inside_distance(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixels from each point to the nearest background pixel (0 off the mask)."""
    dist = ndimage.distance_transform_edt(mask > 0.5)
    col = np.clip(np.floor(points[:, 0]).astype(int), 0, mask.shape[1] - 1)
    row = np.clip(np.floor(points[:, 1]).astype(int), 0, mask.shape[0] - 1)
    return dist[row, col]


def test_candidate_lines_start_at_the_landmark_and_stay_in_the_face(face):
    model, _, jaw, _ = face
    lms = np.asarray(model.landmarks68)
    assert jaw.candidates.shape[0] == 17
    np.testing.assert_array_equal(jaw.candidates[:, 0], lms[:17])
    assert np.asarray(model.face_region)[jaw.candidates].all()
    np.testing.assert_allclose(np.linalg.norm(jaw.outward, axis=1), 1.0, atol=1e-6)
    # Outward normals point away from the nose tip, and the two sides mirror each other.
    v = np.asarray(model.mean_shape)
    away = np.sum(jaw.outward[:, :2] * (v[lms[:17], :2] - v[lms[30], :2]), axis=1)
    assert (away > 0).all()
    np.testing.assert_allclose(jaw.outward[:8, 0], -jaw.outward[16:8:-1, 0], atol=0.05)


@pytest.mark.parametrize("yaw", [30.0, -45.0])
def test_turned_face_jaw_points_lie_on_the_rendered_outline(face, draw, yaw):
    coeffs = _posed(face[3], 10.0, yaw)
    fixed, marched = draw(coeffs, False), draw(coeffs, True)
    mask = np.asarray(marched.mask)
    # The side turning away: the cheek lines of the side whose fixed points sank into the face.
    depth_fixed = _inside_distance(mask, np.asarray(fixed.landmarks)[:17])
    depth_marched = _inside_distance(mask, np.asarray(marched.landmarks)[:17])
    far = CHEEKS[CHEEKS < 8] if depth_fixed[:5].mean() > depth_fixed[12:].mean() else CHEEKS[5:]
    assert depth_fixed[far].mean() > 5.0  # fixed vertices are well inside the outline ...
    assert np.max(depth_marched[far]) <= 3.0  # ... marched ones are on it
    # The inner landmarks do not move.
    np.testing.assert_array_equal(np.asarray(marched.landmarks)[17:], fixed.landmarks[17:])


def test_frontal_face_keeps_its_jaw_points(face, draw):
    coeffs = _posed(face[3], 0.0, 0.0)
    fixed = np.asarray(draw(coeffs, False).landmarks)[:17]
    marched = np.asarray(draw(coeffs, True).landmarks)[:17]
    assert np.max(np.linalg.norm(marched - fixed, axis=1)) < 3.0


def test_landmark_ids_subset_projection_and_render_agree(face, draw):
    _, jmodel, jaw, layout = face
    camera = deng_camera(224)
    coeffs = _posed(layout, -8.0, 40.0)
    coeffs["id"] = coeffs["id"].at[:5].set(jnp.array([1.0, -0.5, 0.8, 0.3, -1.2]))
    rendered = draw(coeffs, True).landmarks
    vertices = jnp.asarray(jmodel.mean_shape) + (jmodel.id_basis @ coeffs["id"]).reshape(-1, 3)
    _, _, pixels = project(jmodel, vertices, coeffs, camera)
    ids = contour.landmark_ids(jaw, jmodel.landmarks68, pixels, euler_to_rotation(coeffs["angles"]))
    np.testing.assert_allclose(pixels[ids], rendered, atol=1e-4)
    np.testing.assert_allclose(project_landmarks(jmodel, coeffs, camera, jaw), rendered, atol=1e-3)
    assert (np.asarray(ids[:17]) != np.asarray(jmodel.landmarks68[:17])).any()


def test_marched_landmarks_have_shape_gradients(face):
    _, jmodel, jaw, layout = face
    coeffs = _posed(layout, 0.0, 35.0)

    def jaw_spread(identity):
        lms = project_landmarks(jmodel, dict(coeffs, id=identity), deng_camera(224), jaw)
        return jnp.sum((lms[:17] - lms[:17].mean(0)) ** 2)

    grad = jax.grad(jaw_spread)(coeffs["id"])
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
