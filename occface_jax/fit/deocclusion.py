"""What a de-occluded photo repaints, and with what (pure, per image)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def deocclusion_fill(
    face_image: jax.Array,
    face_mask: jax.Array,
    head_image: jax.Array,
    head_mask: jax.Array,
    occlusion: jax.Array,
    mouth: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """What a de-occluded photo repaints, and with what: (region (H, W), colours (H, W, 3)).

    ``face_*`` is the render of the fitted face region, ``head_*`` of the full model (which has a
    mouth interior where the face region has an opening), ``occlusion`` the occluded face pixels
    and ``mouth`` (bool) the inner mouth. The region is the occlusion and, when the occlusion
    covers more than half of the inner mouth's face pixels, the whole inner mouth, wherever
    either render covers; the colours are the face render's where it covers, else the head's."""
    face = face_mask > 0.5
    mouth_face = jnp.sum(mouth * face)
    hidden = jnp.sum(occlusion * mouth * face) > 0.5 * jnp.maximum(mouth_face, 1.0)
    region = jnp.maximum(occlusion, jnp.where(hidden, mouth, 0.0))
    fill = jnp.where(face[..., None], face_image, head_image)
    return region * jnp.maximum(face_mask, head_mask), fill
