"""Identity features and the paper's identity loss (Eq. 16), differentiable end to end in JAX.

``L_id = 1 - <F(I), F(I')> / (|F(I)| |F(I')|)`` with F dlib's face-recognition ResNet
(``occface_jax.models.face_id.FaceIdNet``), computed on dlib-aligned 150x150 chips cut in JAX from
each image with its 68 landmarks (``occface_jax.faces.chip``). The cosine itself is ``occface_jax.losses.recon.identity_loss``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from occface_jax.faces.chip import extract_face_chip
from occface_jax.losses.recon import identity_loss as cosine_identity
from occface_jax.models.face_id import CHIP_SIZE, FaceIdNet


def embed_faces(
    net: FaceIdNet, images: jax.Array, landmarks: jax.Array, padding: float = 0.25
) -> jax.Array:
    """128-D descriptors (N, 128) of faces in ``images`` (N, H, W, 3) RGB [0, 1] with landmarks
    (N, 68, 2) (x, y, project pixel convention)."""
    chips = jax.vmap(lambda im, lm: extract_face_chip(im, lm, CHIP_SIZE, padding))(
        images, landmarks
    )
    return net(chips)


def identity_loss_to_embedding(
    net: FaceIdNet,
    embedding: jax.Array,
    images: jax.Array,
    landmarks: jax.Array,
    padding: float = 0.25,
) -> jax.Array:
    """Identity loss (Eq. 16) per face (N,): 1 - cos between the given descriptors (N, 128) (e.g.
    a photo's, computed once) and those of the faces in ``images`` (N, H, W, 3) RGB [0, 1] with
    landmarks (N, 68, 2) (e.g. renderings, differentiable through the chip and the network)."""
    return cosine_identity(embedding, embed_faces(net, images, landmarks, padding))


def identity_loss(
    net: FaceIdNet,
    images: jax.Array,
    rendered: jax.Array,
    landmarks: jax.Array,
    rendered_landmarks: jax.Array | None = None,
) -> jax.Array:
    """Mean identity loss (Eq. 16) between photos (N, H, W, 3) and renderings of the same size, with
    (N, 68, 2) landmarks for each (the rendered ones default to the photo's)."""
    if rendered_landmarks is None:
        rendered_landmarks = landmarks
    target = embed_faces(net, images, landmarks)
    return jnp.mean(identity_loss_to_embedding(net, target, rendered, rendered_landmarks))


def pure_identity_loss(net: FaceIdNet) -> tuple[Callable[..., jax.Array], nnx.State]:
    """``(loss_fn, state)`` for ``jax.jit``: ``loss_fn(state, images, rendered, landmarks,
    rendered_landmarks=None)`` is ``identity_loss`` with the network's arrays passed explicitly (not
    baked into the compiled program as constants)."""
    graphdef, state = nnx.split(net)

    def loss_fn(
        state: nnx.State,
        images: jax.Array,
        rendered: jax.Array,
        landmarks: jax.Array,
        rendered_landmarks: jax.Array | None = None,
    ) -> jax.Array:
        return identity_loss(
            nnx.merge(graphdef, state), images, rendered, landmarks, rendered_landmarks
        )

    return loss_fn, state
