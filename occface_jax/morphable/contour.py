"""Contour ("marching") jaw landmarks: the jaw line a landmark detector marks is the face's visible
outline, which slides over the skin as the head turns; a fixed vertex per jaw landmark does not.

For each of the 17 jaw landmarks (iBUG 0-16) a line of candidate vertices is precomputed once per
model (numpy): the face-region vertices near the segment through the landmark's vertex along the
jaw outline's inward normal, in the model's frontal (x, y) plane (model frame: x = subject's left,
y up, z towards the camera; millimetres). Under a pose, the candidate whose image position lies
furthest along the outline's outward direction (the normal rotated by the pose) is the silhouette
point on that line, and it stands in for the landmark. On a frontal face that is the landmark's
own vertex (or a point next to it); on the side turning away it moves inwards over the cheek.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

N_JAW = 17
NOSE_TIP = 30


class JawContour(NamedTuple):
    """Candidate lines of a model's jaw landmarks (numpy, static per model).

    candidates: (17, K) int32 vertex ids, row i the line of landmark i (its own vertex first,
      padded with it). outward: (17, 3) float32 unit outward normal of the outline at each
      landmark, model frame (z = 0).
    """

    candidates: np.ndarray
    outward: np.ndarray


def jaw_contour(
    mean_shape: np.ndarray,
    landmarks68: np.ndarray,
    face_region: np.ndarray,
    half_width_mm: float = 2.5,
    inward_mm: float = 35.0,
    outward_mm: float = 10.0,
) -> JawContour:
    """Candidate lines for the 17 jaw landmarks of a model.

    Args:
      mean_shape: (N, 3) mm, model frame. landmarks68: (68,) vertex ids (iBUG order).
      face_region: (N,) bool, vertices that may serve as jaw points.
      half_width_mm: how far from the line (in x, y) a vertex may lie.
      inward_mm: how far the line runs inwards from the landmark, at most half the way to the
        nose tip (so that a line never reaches the nose or crosses the face).
      outward_mm: how far the cheek lines (outline normal within 37 degrees of horizontal) run
        outwards beyond the landmark, to the outline of the near side of a turned face. The chin
        lines only run inwards: below the chin a face region goes on under the jaw, where no
        detector puts a landmark.
    """
    v = np.asarray(mean_shape, np.float64)
    lms = np.asarray(landmarks68, np.int64)
    region = np.asarray(face_region, bool)
    jaw = v[lms[:N_JAW], :2]
    nose = v[lms[NOSE_TIP], :2]
    prev = jaw[np.maximum(np.arange(N_JAW) - 1, 0)]
    nxt = jaw[np.minimum(np.arange(N_JAW) + 1, N_JAW - 1)]
    tangent = nxt - prev
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    normal *= np.where(np.sum(normal * (jaw - nose), 1, keepdims=True) < 0, -1.0, 1.0)
    rel = v[None, :, :2] - jaw[:, None]  # (17, N, 2)
    along = np.sum(rel * normal[:, None], -1)
    across = np.abs(rel[..., 0] * normal[:, None, 1] - rel[..., 1] * normal[:, None, 0])
    reach = np.minimum(inward_mm, 0.5 * np.linalg.norm(jaw - nose, axis=1))[:, None]
    beyond = np.where(np.abs(normal[:, :1]) >= 0.8, outward_mm, 0.0)
    near = region[None] & (across <= half_width_mm) & (along >= -reach) & (along <= beyond)
    near[np.arange(N_JAW), lms[:N_JAW]] = False
    width = 1 + int(near.sum(1).max())
    candidates = np.repeat(lms[:N_JAW, None], width, axis=1)
    for i in range(N_JAW):
        ids = np.flatnonzero(near[i])
        candidates[i, 1 : 1 + len(ids)] = ids
    outward = np.concatenate([normal, np.zeros((N_JAW, 1))], 1)
    return JawContour(candidates.astype(np.int32), outward.astype(np.float32))


def silhouette_choice(
    candidate_pixels: jax.Array, rotation: jax.Array, outward: jax.Array
) -> jax.Array:
    """(..., 17) int32: on each line, the index (into the row of ``JawContour.candidates``) of the
    candidate furthest along the outline's outward direction in the image.

    Args:
      candidate_pixels: (..., 17, K, 2) the projected candidate lines, pixels (x right, y down).
      rotation: (..., 3, 3) the pose's rotation (model frame to camera frame, y up).
      outward: (17, 3) ``JawContour.outward``.
    """
    turned = jnp.einsum(
        "...ij,kj->...ki", rotation, jnp.asarray(outward, rotation.dtype)
    )  # (..., 17, 3), camera frame
    direction = jnp.stack([turned[..., 0], -turned[..., 1]], -1)  # image axes (y down)
    score = jnp.sum(jax.lax.stop_gradient(candidate_pixels) * direction[..., None, :], -1)
    return jnp.argmax(score, axis=-1).astype(jnp.int32)


def landmark_ids(
    jaw: JawContour, landmarks68: jax.Array, pixels: jax.Array, rotation: jax.Array
) -> jax.Array:
    """(..., 68) int32 vertex ids of the landmarks under a pose: the jaw (0-16) marched as in
    :func:`silhouette_choice`, the rest ``landmarks68``. ``pixels`` (..., N, 2) are all projected vertices."""
    candidates = jnp.asarray(jaw.candidates)
    best = silhouette_choice(jnp.take(pixels, candidates, axis=-2), rotation, jaw.outward)
    jaw_ids = jnp.take_along_axis(
        jnp.broadcast_to(candidates, best.shape + candidates.shape[-1:]), best[..., None], axis=-1
    )[..., 0]
    rest = jnp.broadcast_to(jnp.asarray(landmarks68)[N_JAW:], best.shape[:-1] + (68 - N_JAW,))
    return jnp.concatenate([jaw_ids, rest.astype(jaw_ids.dtype)], axis=-1)


def landmark_pixels(
    pixels: jax.Array,
    rotation: jax.Array,
    landmarks68: jax.Array,
    jaw: JawContour | None = None,
) -> jax.Array:
    """(..., 68, 2) pixel positions of the 68 landmarks among projected vertices ``pixels``
    (..., N, 2): the vertices ``landmarks68`` and, with ``jaw``, the jaw (0-16) marched to the
    outline as in :func:`landmark_ids`. The choice is discrete (no gradient through it); the
    chosen vertex's position carries the gradient, as a fixed landmark's would."""
    if jaw is None:
        return jnp.take(pixels, jnp.asarray(landmarks68), axis=-2)
    ids = landmark_ids(jaw, landmarks68, pixels, rotation)
    return jnp.take_along_axis(pixels, ids[..., None], axis=-2)


def for_model(model) -> JawContour:
    """:func:`jaw_contour` of a :class:`~occface_jax.morphable.MorphableModel` (concrete arrays)."""
    return jaw_contour(
        np.asarray(model.mean_shape), np.asarray(model.landmarks68), np.asarray(model.face_region)
    )
