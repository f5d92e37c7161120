"""Losses of the de-occlusion GAN (paper §3.2, Eq. 2-6, after EdgeConnect (Nazeri et al. 2019) and
pix2pixHD (Wang et al. 2018)), pure functions of arrays.

Discriminator outputs are ``Sequence[tuple[logits, features]]``, one entry per discriminator scale:
``logits`` (B, h, w) raw patch scores (before any sigmoid), ``features`` a list of (B, h_i, w_i, c_i)
intermediate activations (whatever the discriminator exposes; the logits are not among them unless
it puts them there). Every loss returns one value per batch item, shape (B,), the mean over patches
(or elements) within a scale and the **average** over scales; callers take the mean over the batch
and apply the config's weights.

- ``discriminator_loss`` / ``generator_adversarial_loss`` (Eq. 2 and 4), ``kind`` one of
  :data:`ADVERSARIAL_KINDS`, with D = sigmoid(logits) where a probability is meant:

  ==================  ==========================================  ==============================
  kind                discriminator minimises                     generator minimises
  ==================  ==========================================  ==============================
  ``minimax``         -log D(real) - log(1 - D(fake))             log(1 - D(fake))
  ``nonsaturating``   -log D(real) - log(1 - D(fake))             -log D(fake)
  ``hinge``           relu(1 - real) + relu(1 + fake)             -fake
  ``least_squares``   1/2 (real - 1)^2 + 1/2 fake^2               1/2 (fake - 1)^2
  ==================  ==========================================  ==============================

  ``minimax`` is the paper's log form exactly (D maximises log D(real) + log(1 - D(fake)), written
  here negated so that every loss is minimised; the generator's value is <= 0 and tends to -inf as
  D(fake) -> 1). All log forms are computed from the logits with softplus (log D(x) = -softplus(-x),
  log(1 - D(x)) = -softplus(x)): exact and finite for any logit. ``least_squares`` is LSGAN (Mao et
  al. 2017, labels a=0, b=c=1) with its 1/2 factors, on the raw scores (no sigmoid, as pix2pixHD,
  whose version is twice ours for G and the same for D).
- ``feature_matching_loss`` (Eq. 3): sum over layers i of (1/N_i) ||D_i(real) - D_i(fake)||_1, N_i
  the number of elements of layer i per example (the mean absolute difference), averaged over
  scales. The real features are constants (``stop_gradient``): the term trains the generator only
  and never pulls the discriminator's real-image activations.
- ``masked_l1_loss`` (Eq. 5): ||predicted - target||_1 over the whole image divided by the mask size
  S_m (mask pixels times channels), EdgeConnect's normalisation (its L1 over the image divided by the
  mean of the mask); errors outside the mask count in the numerator as well.
- ``gram_matrix``, ``style_loss`` (Eq. 6): sum over layers of the mean absolute difference of Gram
  matrices, each Gram normalised by C H W (EdgeConnect's ``compute_gram``).
- ``perceptual_loss``: sum over layers of the mean absolute difference of activations
  (EdgeConnect's content loss; weight 0 in our configs by default).

The activations for the last two come from a fixed network (``models.feature_extractors``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

#: One discriminator scale: (patch logits (B, h, w), [activations (B, h_i, w_i, c_i), ...]).
ScaleOutput = tuple[jax.Array, Sequence[jax.Array]]
ADVERSARIAL_KINDS = ("minimax", "nonsaturating", "hinge", "least_squares")


def _check_kind(kind: str) -> None:
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(
            f"unknown adversarial loss kind {kind!r}; expected one of {ADVERSARIAL_KINDS}"
        )


def _per_example_mean(x: jax.Array) -> jax.Array:
    """Mean over every axis but the first, (B, ...) -> (B,)."""
    return jnp.mean(x.reshape(x.shape[0], -1), axis=1)


def _average_over_scales(values: list[jax.Array]) -> jax.Array:
    if not values:
        raise ValueError("no discriminator outputs (expected one (logits, features) per scale)")
    return sum(values[1:], values[0]) / len(values)


def _discriminator_patch_loss(real: jax.Array, fake: jax.Array, kind: str) -> jax.Array:
    """(B,) for one scale's real and fake logits."""
    if kind in ("minimax", "nonsaturating"):
        # -log sigmoid(real) - log(1 - sigmoid(fake))
        return _per_example_mean(jax.nn.softplus(-real)) + _per_example_mean(jax.nn.softplus(fake))
    if kind == "hinge":
        return _per_example_mean(jax.nn.relu(1.0 - real)) + _per_example_mean(
            jax.nn.relu(1.0 + fake)
        )
    return 0.5 * _per_example_mean((real - 1.0) ** 2) + 0.5 * _per_example_mean(fake**2)


def _generator_patch_loss(fake: jax.Array, kind: str) -> jax.Array:
    """(B,) for one scale's fake logits."""
    if kind == "minimax":
        return _per_example_mean(-jax.nn.softplus(fake))  # log(1 - sigmoid(fake))
    if kind == "nonsaturating":
        return _per_example_mean(jax.nn.softplus(-fake))  # -log sigmoid(fake)
    if kind == "hinge":
        return _per_example_mean(-fake)
    return 0.5 * _per_example_mean((fake - 1.0) ** 2)


def discriminator_loss(
    real: Sequence[ScaleOutput], fake: Sequence[ScaleOutput], kind: str = "minimax"
) -> jax.Array:
    """The discriminator's loss (Eq. 2/4, minimised), (B,): the kind's patch loss on the real and the
    generated image's logits, mean over patches, average over scales."""
    _check_kind(kind)
    if len(real) != len(fake):
        raise ValueError(f"{len(real)} real but {len(fake)} fake discriminator scales")
    return _average_over_scales(
        [_discriminator_patch_loss(r[0], f[0], kind) for r, f in zip(real, fake, strict=True)]
    )


def generator_adversarial_loss(fake: Sequence[ScaleOutput], kind: str = "minimax") -> jax.Array:
    """The generator's adversarial loss (Eq. 2/4), (B,): the kind's generator term on the generated
    image's logits, mean over patches, average over scales."""
    _check_kind(kind)
    return _average_over_scales([_generator_patch_loss(f[0], kind) for f in fake])


def feature_matching_loss(real: Sequence[ScaleOutput], fake: Sequence[ScaleOutput]) -> jax.Array:
    """Eq. 3, (B,): per scale, sum over layers of the mean absolute difference between the
    discriminator's activations on the real and on the generated image; averaged over scales. The
    real activations are ``stop_gradient``-ed (constants: gradients reach the fake branch only)."""
    if len(real) != len(fake):
        raise ValueError(f"{len(real)} real but {len(fake)} fake discriminator scales")
    per_scale = []
    for (_, real_features), (_, fake_features) in zip(real, fake, strict=True):
        if len(real_features) != len(fake_features):
            raise ValueError(
                f"{len(real_features)} real but {len(fake_features)} fake discriminator layers"
            )
        per_scale.append(_layer_l1(list(real_features), list(fake_features), stop_target=True))
    return _average_over_scales(per_scale)


def _layer_l1(
    targets: list[jax.Array], predictions: list[jax.Array], stop_target: bool = False
) -> jax.Array:
    """Sum over layers of the per-example mean absolute difference, (B,)."""
    if not predictions:
        raise ValueError("no feature layers to compare")
    if stop_target:
        targets = [jax.lax.stop_gradient(t) for t in targets]
    terms = [_per_example_mean(jnp.abs(p - t)) for t, p in zip(targets, predictions, strict=True)]
    return sum(terms[1:], terms[0])


def masked_l1_loss(
    predicted: jax.Array, target: jax.Array, mask: jax.Array, min_pixels: float = 1.0
) -> jax.Array:
    """Eq. 5, (B,): sum over all pixels and channels of |predicted - target| divided by
    S_m = (number of mask pixels) x C.

    ``predicted``, ``target`` (B, H, W, C); ``mask`` (B, H, W) in {0, 1} (1 = the region to
    generate; a soft mask counts its sum). The numerator covers the whole image: an error outside the
    mask adds to the loss like one inside. The mask's pixel count is floored at ``min_pixels`` (1): an
    empty mask gives sum |predicted - target| / C (0 when the prediction matches), never a division
    by zero; with clean (unmasked) images in a batch that sum is large, so raise ``min_pixels`` (e.g.
    to H W, giving the plain mean absolute error) if those should weigh less.
    """
    channels = predicted.shape[-1]
    error = jnp.sum(jnp.abs(predicted - target), axis=(-3, -2, -1))
    size = jnp.maximum(jnp.sum(mask, axis=(-2, -1)), min_pixels) * channels
    return error / size


def gram_matrix(features: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, C, C): sum over pixels of f_c f_d divided by C H W (EdgeConnect's
    normalisation; Gatys et al.'s Gram is not normalised)."""
    _, h, w, c = features.shape
    gram = jnp.einsum("bhwc,bhwd->bcd", features, features, precision=jax.lax.Precision.HIGHEST)
    return gram / (c * h * w)


def style_loss(
    predicted_features: Sequence[jax.Array], target_features: Sequence[jax.Array]
) -> jax.Array:
    """Eq. 6, (B,): sum over layers of the mean absolute difference of the Gram matrices
    (:func:`gram_matrix`) of the predicted and the target image's activations (B, H, W, C)."""
    if len(predicted_features) != len(target_features):
        raise ValueError(
            f"{len(predicted_features)} predicted but {len(target_features)} target layers"
        )
    return _layer_l1(
        [gram_matrix(t) for t in target_features], [gram_matrix(p) for p in predicted_features]
    )


def perceptual_loss(
    predicted_features: Sequence[jax.Array], target_features: Sequence[jax.Array]
) -> jax.Array:
    """EdgeConnect's perceptual (content) loss, (B,): sum over layers of the mean absolute difference
    of the activations (B, H, W, C)."""
    if len(predicted_features) != len(target_features):
        raise ValueError(
            f"{len(predicted_features)} predicted but {len(target_features)} target layers"
        )
    return _layer_l1(list(target_features), list(predicted_features))
