"""Losses as pure functions of arrays, one per equation of the paper."""

from occface_jax.losses.recon import (
    LossWeights,
    coefficient_prior,
    identity_loss,
    landmark_loss,
    photometric_attention,
    photometric_loss,
    reconstruction_loss,
)

__all__ = [
    "LossWeights",
    "coefficient_prior",
    "identity_loss",
    "landmark_loss",
    "photometric_attention",
    "photometric_loss",
    "reconstruction_loss",
]
