"""The fit's objective: landmark weights, and the identity-feature term (Eq. 16) through the
renderer: finite value and gradient, smaller as the render comes closer to the photo."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.fit.objective import (
    FaceRenderer,
    IdentityTerm,
    fit_objective,
    hidden_landmark_weights,
    landmark_weights,
)
from occface_jax.losses.recon import LossWeights
from occface_jax.morphable import CoeffLayout
from occface_jax.render import deng_camera
from occface_jax.render.antialias import mesh_adjacency


def test_jaw_and_eye_landmarks_weigh_the_given_share():
    w = landmark_weights(0.3)
    assert w.shape == (68,) and np.allclose(w[:17], 0.3) and w[30] == 20.0 and w[40] == 1.0
    eyes = landmark_weights(0.3, 5.0)
    assert np.allclose(eyes[36:48], 5.0) and np.array_equal(np.delete(eyes, range(36, 48)), np.delete(w, range(36, 48)))  # fmt: skip


def test_hidden_landmarks_weigh_the_given_share():
    occlusion = jnp.zeros((10, 10)).at[2:5, 6:9].set(1.0)
    # (x, y) pixels: inside the block (col 7, row 3), its edge pixel (col 6.0, row 2.9), outside,
    # and off the image (clamped to the border pixel, which is visible).
    points = jnp.array([[7.5, 3.5], [6.0, 2.9], [5.99, 3.0], [-4.0, 30.0]])
    for weight in (0.0, 0.5, 1.0):
        got = np.asarray(hidden_landmark_weights(occlusion, points, weight))
        np.testing.assert_allclose(got, [weight, weight, 1.0, 1.0])


@pytest.fixture(scope="module")
def face_and_photo(default_model):
    """The face region, its renderer at 112 px, and a 'photo': the render of known coefficients
    (identity and albedo off the mean, lit from the side) over a grey background."""
    face = default_model.face_only()
    jface, layout = face.to_jax(), CoeffLayout.for_model(face)
    renderer = FaceRenderer(deng_camera(112), 0.8, mesh_adjacency(face.triangles), None)
    truth = layout.zeros()
    truth["id"] = truth["id"].at[:6].set(jnp.array([1.5, -1.0, 0.8, 1.2, -0.6, 0.9]))
    truth["tex"] = truth["tex"].at[:3].set(jnp.array([1.0, -0.5, 0.5]))
    truth["light"] = truth["light"].at[1].set(0.3)
    truth["angles"] = jnp.array([0.0, 0.2, 0.0])
    photo = renderer(jface, truth, jnp.full((112, 112, 3), 0.4))
    return jface, renderer, truth, photo.image, photo.landmarks


def test_identity_term_is_finite_differentiable_and_falls_as_the_render_matches(
    face_and_photo, face_id_net
):
    from flax import nnx

    jface, renderer, truth, photo, landmarks = face_and_photo
    graphdef, state = nnx.split(face_id_net)
    term = IdentityTerm(graphdef)
    embedding = term.embed(state, photo, landmarks)
    occlusion = jnp.zeros(photo.shape[:2])

    def feat(params):
        _, terms = fit_objective(
            params,
            jface,
            photo,
            landmarks,
            jnp.ones(68),
            occlusion,
            (state, embedding),
            renderer=renderer,
            weights=LossWeights(),
            robust_scale=0.15,
            identity=term,
        )
        return terms["feat"]

    def towards_mean(share):  # identity and albedo a share of the way back to the mean face
        return dict(truth, id=(1 - share) * truth["id"], tex=(1 - share) * truth["tex"])

    value_and_grad = jax.jit(jax.value_and_grad(feat))
    results = [value_and_grad(towards_mean(share)) for share in (0.0, 0.5, 1.0)]
    values = [float(v) for v, _ in results]
    assert values[0] == pytest.approx(0.0, abs=1e-4)  # the render is the photo (float32 cosine)
    assert values[0] < values[1] < values[2]
    grads = results[2][1]
    assert all(np.isfinite(np.asarray(g)).all() for g in grads.values())
    assert float(jnp.abs(grads["id"]).max()) > 0 and float(jnp.abs(grads["tex"]).max()) > 0


def test_detached_blocks_move_by_the_landmarks_alone(face_and_photo):
    """``detached``: the photometric term's gradient on the named blocks is zero and on the others
    unchanged; the landmark term's gradient on them is unchanged (the landmarks projected apart
    from the render are the render's own, to float32 rounding)."""
    jface, renderer, truth, photo, landmarks = face_and_photo
    start = dict(truth, id=0.5 * truth["id"], tex=0.5 * truth["tex"], angles=truth["angles"] * 0.8)

    def gradients(detached):
        def term(name, params):
            _, terms = fit_objective(
                params, jface, photo, landmarks, jnp.ones(68), jnp.zeros(photo.shape[:2]), None,
                renderer=renderer, weights=LossWeights(), robust_scale=0.15, detached=detached,
            )  # fmt: skip
            return terms[name]

        return {name: jax.grad(functools.partial(term, name))(start) for name in ("phot", "land")}

    free, detached = gradients(frozenset()), gradients(frozenset({"id", "exp"}))
    for key in ("id", "exp"):
        assert float(jnp.abs(free["phot"][key]).max()) > 0
        assert float(jnp.abs(detached["phot"][key]).max()) == 0.0
    for key in ("tex", "light", "angles"):
        np.testing.assert_allclose(detached["phot"][key], free["phot"][key], rtol=1e-4, atol=1e-8)
    for key in ("id", "exp", "angles"):
        assert float(jnp.abs(free["land"][key]).max()) > 0
        np.testing.assert_allclose(detached["land"][key], free["land"][key], rtol=1e-4, atol=1e-8)
