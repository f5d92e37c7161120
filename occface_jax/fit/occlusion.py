"""The occluder estimated without a network: face pixels the fitted render cannot explain.

Images are (H, W, 3) RGB in [0, 1]; masks (H, W) in [0, 1] (1 = occluder, or = face / protected
feature); a residual is the per-pixel RGB distance between photo and render.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from occface_jax.fit.features import occlude_enclosed_features
from occface_jax.fit.filters import closing


def estimate_occlusion(
    image: jax.Array,
    rendered: jax.Array,
    face_mask: jax.Array,
    ratio: float,
    min_residual: float,
    protect: jax.Array | None = None,
    close: int = 5,
    proposed: jax.Array | None = None,
    confirm_ratio: float = 2.0,
    enclosed: jax.Array | None = None,
    ring: int = 3,
    ring_share: float = 0.5,
    colour_share: float = 0.0,
    yielding: jax.Array | None = None,
    yield_share: float = 0.5,
) -> jax.Array:
    """Occluded face pixels (H, W) in {0, 1}.

    A rendered-face pixel is an outlier when its colour residual exceeds
    ``max(min_residual, ratio x median residual over the face)``; pixels in ``protect`` (eyes, brows
    and inner mouth, which the smooth albedo cannot paint) are never outliers. Pixels in
    ``proposed`` (e.g. the mask network's occluder, {0, 1}) need less evidence: a residual above
    ``confirm_ratio x median`` confirms them, protected or not (sunglasses cover the eyes); the
    median is then taken over the face pixels not proposed (the skin), unless they are under a
    tenth of the face. A ``close`` x ``close`` closing fills the gaps between thin occluder parts
    (hair strands, spectacle rims); no opening, which would erase them. With ``colour_share`` > 0,
    pixels whose colour is mostly the outliers' (an :func:`occluder_colour_share` above
    ``colour_share``, the rest of the face as skin) need only ``confirm_ratio x median`` as well,
    once the outliers are 2% of the face: the parts of an occluder the albedo has half absorbed.
    The ``enclosed`` features (K, H, W), e.g. the inner mouth, follow the ring rule of
    :func:`~occface_jax.fit.features.occlude_enclosed_features` (``ring``, ``ring_share``) over
    the unprotected face. The ``yielding`` regions (K, H, W), e.g. each eye and each brow of
    :func:`~occface_jax.fit.features.eye_brow_regions`, are protected regions that yield to the
    same ring rule, each alone, with ``yield_share``: a region whose ``ring``-pixel band of
    unprotected face is more than ``yield_share`` occluded (the occluder continues across the
    protection: sunglasses) is occluded whole; a frame that surrounds a visible eye (clear
    spectacles) leaves the band next to the eye as skin, so that eye stays protected."""
    residual = jnp.linalg.norm(image - rendered, axis=-1)
    face = face_mask > 0.5
    median = jnp.nanmedian(jnp.where(face, residual, jnp.nan))
    if proposed is not None:  # the reference is the skin the network left (when enough is left)
        skin = face & (proposed <= 0.5)
        skin_median = jnp.nanmedian(jnp.where(skin, residual, jnp.nan))
        median = jnp.where(skin.sum() >= 0.1 * face.sum(), skin_median, median)
    threshold = jnp.maximum(ratio * median, min_residual)
    confirmed = residual > confirm_ratio * median  # enough for a proposed pixel
    unprotected = face & (protect < 0.5) if protect is not None else face  # the skin
    outlier = (residual > threshold) & unprotected
    if proposed is not None:
        outlier = outlier | ((proposed > 0.5) & confirmed)
    if colour_share > 0:  # the occluder's colours propose the pixels the residual test missed
        occluder = face & outlier
        share = occluder_colour_share(image, occluder, unprotected & ~outlier)
        enough = occluder.sum() >= 0.02 * face.sum()
        outlier = outlier | (enough & (share > colour_share) & confirmed)
    occluded = closing(jnp.where(face & outlier, 1.0, 0.0), close)
    if enclosed is not None:
        occluded = occlude_enclosed_features(occluded, enclosed, unprotected, ring, ring_share)
    if yielding is not None:
        occluded = occlude_enclosed_features(occluded, yielding, unprotected, ring, yield_share)
    return occluded * face


def occluder_colour_share(
    image: jax.Array, occluder: jax.Array, skin: jax.Array, bins: int = 12
) -> jax.Array:
    """(H, W) in [0, 1]: how much of the colour density at each pixel's colour (``image`` RGB in
    [0, 1]) is the occluder's: h_o / (h_o + h_s), with h_o and h_s the colour histograms of the
    ``occluder`` and ``skin`` pixels ((H, W) bool) over ``bins``^3 RGB cells, each normalised to
    sum 1 and smoothed over the 3 x 3 x 3 neighbouring cells; 0 where neither has any density."""
    cell = jnp.clip((image * bins).astype(jnp.int32), 0, bins - 1)
    flat = ((cell[..., 0] * bins + cell[..., 1]) * bins + cell[..., 2]).reshape(-1)

    def density(pixels: jax.Array) -> jax.Array:
        counts = jnp.zeros(bins**3).at[flat].add(pixels.reshape(-1).astype(jnp.float32))
        cube = counts.reshape(bins, bins, bins)
        cube = jax.lax.reduce_window(cube, 0.0, jax.lax.add, (3, 3, 3), (1, 1, 1), "SAME")
        return cube.reshape(-1) / jnp.maximum(cube.sum(), 1e-6)

    h_occluder, h_skin = density(occluder), density(skin)
    share = h_occluder / jnp.maximum(h_occluder + h_skin, 1e-12)
    return share[flat].reshape(image.shape[:-1])
