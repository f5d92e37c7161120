"""Landmark accuracy: point errors, normalised mean error (NME) and pooled RMS, pure and batched.

Points are (..., N, 2) arrays (pixels, or any unit shared by both sets); iBUG-68 order where a
normaliser names points.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jax import Array

# iBUG-68 outer eye corners, the usual 300-W "inter-ocular" normaliser.
OUTER_EYE_CORNERS = (36, 45)
# iBUG-68 points without the jaw line (17 - 67): the "inner 51".
INNER_POINTS = slice(17, 68)


def point_errors(predicted: Array, truth: Array) -> Array:
    """Euclidean distance of each predicted point to its true one: (..., N, 2) -> (..., N)."""
    return jnp.linalg.norm(jnp.asarray(predicted) - jnp.asarray(truth), axis=-1)


def mean_point_error(
    predicted: Array, truth: Array, points: slice | Sequence[int] = slice(None)
) -> Array:
    """Mean of :func:`point_errors` over ``points`` (default all): (..., N, 2) -> (...,)."""
    chosen = points if isinstance(points, slice) else jnp.asarray(points)
    return point_errors(predicted, truth)[..., chosen].mean(axis=-1)


def landmark_nme(
    predicted: Array,
    truth: Array,
    normaliser: tuple[int, int] = OUTER_EYE_CORNERS,
    points: slice | Sequence[int] = slice(None),
) -> Array:
    """Mean point-to-point distance over ``points`` (default all), divided by the distance between
    the two ``normaliser`` points of ``truth``. predicted, truth: (..., N, 2); returns (...,)."""
    truth = jnp.asarray(truth)
    i, j = normaliser
    distance = jnp.linalg.norm(truth[..., i, :] - truth[..., j, :], axis=-1)
    return mean_point_error(predicted, truth, points) / distance


def box_size(truth: Array) -> Array:
    """sqrt(width x height) of the points' bounding box: (..., N, 2) -> (...,)."""
    truth = jnp.asarray(truth)
    extent = truth.max(axis=-2) - truth.min(axis=-2)
    return jnp.sqrt(extent[..., 0] * extent[..., 1])


def box_nme(predicted: Array, truth: Array, points: slice | Sequence[int] = slice(None)) -> Array:
    """Box-normalised NME (as 3DDFA_V2 and AFLW2000-3D reports): mean point-to-point distance over
    ``points``, divided by :func:`box_size` of all of ``truth``'s points. (..., N, 2) -> (...,)."""
    return mean_point_error(predicted, truth, points) / box_size(truth)


def pooled_rms(errors: Sequence[np.ndarray]) -> float:
    """Root mean square of point errors pooled over ``errors`` (arrays of any shape, e.g. the
    :func:`point_errors` of several images, some of them empty); nan when there is none."""
    pooled = np.concatenate([np.ravel(e) for e in errors]) if errors else np.zeros(0)
    return float(np.sqrt(np.mean(pooled**2))) if pooled.size else float("nan")
