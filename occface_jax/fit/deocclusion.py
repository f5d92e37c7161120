"""De-occlusion in JAX: N_cont then N_syn on aligned crops (:func:`deocclude`, shared by the
pipeline's ``app.predictors.DeocclusionPredictor`` and the regressor's training on I_fina), and what a
de-occluded photo repaints, and with what (:func:`deocclusion_fill`, pure, per image)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from occface_jax.faces import edges
from occface_jax.models.edge_connect import complete_contours
from occface_jax.models.pix2pixhd import composite


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


def hole_dilation(synthesis_config: Any) -> float:
    """How far a de-occlusion hole grows beyond the occluder, a fraction of the crop side: the
    synthesis stage's training holes' (its config's ``inpainting.dilation``; 0 without one)."""
    return float(synthesis_config.get("inpainting", {}).get("dilation", 0.0))


def deocclude(
    contour: Callable[..., jax.Array],
    contour_weights: Any,
    synthesis: Callable[..., jax.Array],
    synthesis_weights: Any,
    crops: jax.Array,
    occluder: jax.Array,
    sizes: tuple[int, int, int],
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """De-occlusion of aligned crops (B, S, S, 3) with occluder maps (B, S, S), all in JAX:
    (complete face (B, S, S, 3), C_fina at S (B, S, S), hole (B, S, S) {0, 1}).

    ``sizes`` = (N_cont's input C, N_syn's input, hole dilation radius in px at S), static. The
    hole is the occluder > 0.5 grown by a disc (``faces.edges.dilate_disk``); N_cont runs at C on
    the luma of the crop resized to C, its Canny edges (``faces.edges.canny``) and the hole
    resized (any covered pixel stays in it); N_syn at its size on the crop, C_fina and the hole;
    the synthesis, resized to S, replaces the crop inside the hole only (``pix2pixhd.composite``).
    Resizing: by area when shrinking, bilinear when growing (``faces.edges.resize_square``). A
    crop without a hole comes back as it is, with the Canny edges of its own luma at S."""
    c_size, s_size, radius = sizes
    side = crops.shape[-2]
    hole = edges.dilate_disk(occluder, radius)
    small = edges.resize_square(crops, c_size, channels=True)
    gray = edges.luma(small)
    c_fina = contour(contour_weights, gray, edges.canny(gray), edges.resize_hole(hole, c_size))
    face = synthesis(
        synthesis_weights,
        edges.resize_square(crops, s_size, channels=True),
        edges.resize_square(c_fina, s_size),
        edges.resize_hole(hole, s_size),
    )
    face = edges.resize_square(face, side, channels=True)
    any_hole = jnp.any(hole > 0.5, axis=(-2, -1))[:, None, None]
    image = jnp.where(any_hole[..., None], composite(face, crops, hole), crops)
    contour_s = jnp.where(
        any_hole, edges.resize_square(c_fina, side), edges.canny(edges.luma(crops))
    )
    return image, contour_s, hole


def deocclude_with_generators(
    contour_generator: nnx.Module,
    synthesis_generator: nnx.Module,
    crops: jax.Array,
    occluder: jax.Array,
    sizes: tuple[int, int, int],
) -> jax.Array:
    """:func:`deocclude`'s complete faces (B, S, S, 3) with the two trained generators themselves
    (N_cont's contour probabilities completed outside the hole, N_syn's face composited inside
    it), as their exported stage functions compute them."""

    def contour(_: Any, gray: jax.Array, canny: jax.Array, hole: jax.Array) -> jax.Array:
        return complete_contours(contour_generator, gray, canny, hole)

    def synthesis(_: Any, image: jax.Array, c_fina: jax.Array, hole: jax.Array) -> jax.Array:
        return composite(synthesis_generator(image, c_fina, hole), image, hole)

    return deocclude(contour, None, synthesis, None, crops, occluder, sizes)[0]
