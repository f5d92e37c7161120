"""Facial features an albedo model cannot paint (eyes, inner mouth, brows), as maps drawn from the
68 landmarks (iBUG order; pixels, x right, y down, pixel centres at +0.5), and the ring rule that
marks an enclosed feature occluded when the skin around it is."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from occface_jax.fit.filters import max_filter

#: Row of :func:`feature_masks` holding the inner mouth.
INNER_MOUTH = 2


def feature_mask(landmarks: jax.Array, size: int, margin: float) -> jax.Array:
    """(size, size) 1 inside the eyes (landmarks 36-41, 42-47) and the inner mouth (60-67, teeth and
    tongue), grown by ``margin`` pixels, and within ``margin`` pixels of the brows (17-21, 22-26):
    regions an albedo model cannot explain. The union of :func:`feature_masks`."""
    return jnp.max(feature_masks(landmarks, size, margin), axis=0)


def feature_masks(landmarks: jax.Array, size: int, margin: float) -> jax.Array:
    """(4, size, size) float32 in {0, 1}: the image-left eye, the image-right eye, the inner mouth
    and the brows, as in :func:`feature_mask`, one map each."""
    ys, xs = jnp.mgrid[0:size, 0:size] + 0.5
    pix = jnp.stack([xs, ys], axis=-1)[..., None, :]  # (H, W, 1, 2)

    def segment_distance(a: jax.Array, b: jax.Array) -> jax.Array:  # (S, 2) each -> (H, W)
        ab = b - a
        t = jnp.clip(jnp.sum((pix - a) * ab, -1) / jnp.maximum(jnp.sum(ab * ab, -1), 1e-6), 0, 1)
        return jnp.min(jnp.linalg.norm(pix - (a + t[..., None] * ab), axis=-1), axis=-1)

    def polygon(points: jax.Array) -> jax.Array:
        closed_dist = segment_distance(points, jnp.roll(points, -1, axis=0))
        a, b = points, jnp.roll(points, -1, axis=0)
        cross = (b[:, 0] - a[:, 0]) * (pix[..., 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (
            pix[..., 0] - a[:, 0]
        )
        inside = jnp.all(cross >= 0, -1) | jnp.all(cross <= 0, -1)  # convex polygon
        return inside | (closed_dist < margin)

    brows = (segment_distance(landmarks[17:21], landmarks[18:22]) < margin) | (
        segment_distance(landmarks[22:26], landmarks[23:27]) < margin
    )
    parts = [polygon(landmarks[36:42]), polygon(landmarks[42:48]), polygon(landmarks[60:68]), brows]
    return jnp.stack(parts).astype(jnp.float32)


def occlude_enclosed_features(
    occlusion: jax.Array,
    features: jax.Array,
    skin: jax.Array,
    ring: int = 3,
    ring_share: float = 0.5,
) -> jax.Array:
    """``occlusion`` (H, W) in [0, 1] with every feature of ``features`` (K, H, W) {0, 1} whose
    ``ring``-pixel band of ``skin`` ((H, W) bool) is more than ``ring_share`` occluded marked
    occluded whole: the residual cannot tell an occluder over the inner mouth, the lips around it
    can (food or a hand over them). A band of fewer than ``4 x ring`` skin pixels (the feature at
    the image border or under a protected margin) decides nothing. Every feature is judged on the
    given ``occlusion``; ``ring`` 0 changes nothing."""
    if ring <= 0:
        return occlusion
    band = (jax.vmap(lambda f: max_filter(f, 2 * ring + 1))(features) > 0.5) & skin
    count = jnp.sum(band, axis=(-2, -1))
    share = jnp.sum(occlusion * band, axis=(-2, -1)) / jnp.maximum(count, 1)
    hidden = (share > ring_share) & (count >= 4 * ring)
    return jnp.maximum(occlusion, jnp.max(jnp.where(hidden[:, None, None], features, 0.0), 0))


def eye_brow_regions(features: jax.Array) -> jax.Array:
    """(4, H, W) in {0, 1}: the image-left eye, the image-right eye, the image-left brow and the
    image-right brow of :func:`feature_masks` ``features`` (4, H, W); the brows map is split at
    the column halfway between the two eyes' centroids, so each side is judged alone."""
    cols = jnp.arange(features.shape[-1], dtype=jnp.float32) + 0.5
    centre = [jnp.sum(f.sum(0) * cols) / jnp.maximum(f.sum(), 1.0) for f in features[:2]]
    left = (cols < 0.5 * (centre[0] + centre[1]))[None, :]
    brows = features[3]
    return jnp.stack([features[0], features[1], brows * left, brows * ~left])
