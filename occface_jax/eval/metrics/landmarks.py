"""Landmark accuracy: normalised mean error (NME), pure and batched."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

# iBUG-68 outer eye corners, the usual 300-W "inter-ocular" normaliser.
OUTER_EYE_CORNERS = (36, 45)


def landmark_nme(
    predicted: Array, truth: Array, normaliser: tuple[int, int] = OUTER_EYE_CORNERS
) -> Array:
    """Mean point-to-point distance over the points, divided by the distance between the two
    ``normaliser`` points of ``truth``. predicted, truth: (..., N, 2) in pixels; returns (...,)."""
    predicted, truth = jnp.asarray(predicted), jnp.asarray(truth)
    errors = jnp.linalg.norm(predicted - truth, axis=-1).mean(axis=-1)
    i, j = normaliser
    return errors / jnp.linalg.norm(truth[..., i, :] - truth[..., j, :], axis=-1)
