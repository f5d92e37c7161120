"""Reconstruction losses of the paper (Eq. 15-19, after Deng et al. 2019), as pure functions.

Images are (..., H, W, 3) float in [0, 1]; masks (..., H, W) in [0, 1]; landmarks (..., 68, 2) in
pixels. Every loss returns one scalar per leading batch index, shape (...,); callers take the mean.

- ``identity_loss`` (Eq. 16): 1 - cos(f(I), f(I')) between face-recognition embeddings.
- ``coefficient_prior`` (Eq. 17): w_id ||alpha_id||^2 + w_exp ||beta_exp||^2 + w_tex ||beta_tex||^2.
  The paper gives w_alpha = 1.0 and w_beta = 1.75e-3; alpha is identity, beta the expression and
  albedo coefficients (Deng et al. use 1.0 / 0.8 / 1.7e-3 for id / exp / tex).
- ``photometric_loss`` (Eq. 18): sum_i Z_i ||I_i - I'_i||_2 / sum_i Z_i, per-pixel L2 norm of the
  colour difference (not squared), attention Z = 1 where the mesh projects, 0.1 elsewhere, and 0
  where an occlusion mask marks an occluder.
- ``landmark_loss`` (Eq. 19): (1/68) sum_n w_n ||q_n - q'_n||^2, w_n = 20 on the nose (ids 28-30)
  and the inner mouth (60-67), 1 elsewhere, as Deng et al.
- ``reconstruction_loss`` (Eq. 15): lambda_feat L_feat + lambda_regu L_regu + lambda_phot L_phot +
  lambda_land L_land, default lambdas 0.2, 3.6e-4, 1.4, 1.6e-3.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

#: Deng et al.'s landmark weights: 20 on the nose ridge (28-30) and the inner mouth (60-67).
LANDMARK_WEIGHTS = np.ones(68, np.float32)
LANDMARK_WEIGHTS[28:31] = 20.0
LANDMARK_WEIGHTS[60:68] = 20.0
BACKGROUND_ATTENTION = 0.1


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """The paper's weights (Eq. 15 and 17)."""

    feat: float = 0.2
    regu: float = 3.6e-4
    phot: float = 1.4
    land: float = 1.6e-3
    w_id: float = 1.0
    w_exp: float = 1.75e-3
    w_tex: float = 1.75e-3
    dense: float = 0.0  # the 468 dense landmarks (not the paper's; the fit's config sets it)


def identity_loss(
    embedding: jax.Array, embedding_rendered: jax.Array, eps: float = 1e-8
) -> jax.Array:
    """1 - cosine similarity of (..., D) embeddings of the input and the rendered face."""
    dot = jnp.sum(embedding * embedding_rendered, axis=-1)
    norms = jnp.linalg.norm(embedding, axis=-1) * jnp.linalg.norm(embedding_rendered, axis=-1)
    return 1.0 - dot / jnp.maximum(norms, eps)


def coefficient_prior(
    id_coeffs: jax.Array,
    exp_coeffs: jax.Array,
    tex_coeffs: jax.Array,
    w_id: float = 1.0,
    w_exp: float = 1.75e-3,
    w_tex: float = 1.75e-3,
) -> jax.Array:
    """Weighted squared norms of the coefficient blocks, (...,)."""
    return (
        w_id * jnp.sum(id_coeffs**2, -1)
        + w_exp * jnp.sum(exp_coeffs**2, -1)
        + w_tex * jnp.sum(tex_coeffs**2, -1)
    )


def photometric_attention(
    face_mask: jax.Array,
    occlusion_mask: jax.Array | None = None,
    background: float = BACKGROUND_ATTENTION,
) -> jax.Array:
    """Z (..., H, W): 1 where the mesh projects (``face_mask`` 1), ``background`` elsewhere, times
    (1 - ``occlusion_mask``) so that occluder pixels do not count."""
    z = background + (1.0 - background) * face_mask
    if occlusion_mask is not None:
        z = z * (1.0 - occlusion_mask)
    return z


def photometric_loss(
    image: jax.Array,
    rendered: jax.Array,
    attention: jax.Array,
    eps: float = 1e-6,
    robust_scale: float = 0.0,
) -> jax.Array:
    """Attention-weighted mean per-pixel colour distance (Eq. 18), (...,).

    The per-pixel norm uses sqrt(|d|^2 + eps^2) so that its gradient is finite at d = 0. With
    ``robust_scale`` s > 0 (an RGB distance, colours in [0, 1]) each pixel's distance d counts as
    s log(1 + d / s): d itself for d << s, only logarithmically more beyond, so a pixel's pull
    falls as 1 / (1 + d / s) and an occluder pixel no mask caught weighs little. 0 is Eq. 18.
    """
    dist = jnp.sqrt(jnp.sum((image - rendered) ** 2, axis=-1) + eps**2)
    if robust_scale > 0:
        dist = robust_scale * jnp.log1p(dist / robust_scale)
    return jnp.sum(attention * dist, axis=(-2, -1)) / jnp.maximum(
        jnp.sum(attention, axis=(-2, -1)), eps
    )


def landmark_loss(
    landmarks: jax.Array,
    projected: jax.Array,
    weights: jax.Array | None = None,
    visibility: jax.Array | None = None,
) -> jax.Array:
    """Weighted mean squared pixel distance over 68 landmarks (Eq. 19), (...,).

    ``visibility`` (..., 68) in [0, 1] zeroes landmarks that are not observed (e.g. under an occluder).
    """
    w = jnp.asarray(LANDMARK_WEIGHTS if weights is None else weights)
    if visibility is not None:
        w = w * visibility
    sq = jnp.sum((landmarks - projected) ** 2, axis=-1)
    return jnp.sum(w * sq, axis=-1) / landmarks.shape[-2]


def reconstruction_loss(
    terms: dict[str, jax.Array], weights: LossWeights = LossWeights()
) -> jax.Array:
    """Eq. 15: the weighted sum of whichever of 'feat', 'regu', 'phot', 'land' are in ``terms``."""
    total = 0.0
    for name, value in terms.items():
        total = total + getattr(weights, name) * value
    return total
