"""The de-occlusion fill: a hidden mouth opening is repainted from the full model's render."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from occface_jax.fit.deocclusion import deocclusion_fill
from occface_jax.fit.features import INNER_MOUTH, feature_masks
from occface_jax.morphable import CoeffLayout
from occface_jax.morphable.rendering import render
from occface_jax.render import deng_camera


def test_deocclusion_repaints_a_hidden_mouth_opening_from_the_head(default_model):
    """The face region has an opening between the lips, the full model a mouth interior: an
    occluder over the mouth repaints the opening from the head's render; one on the cheek leaves
    it (and everything outside the occluder) alone."""
    full, face = default_model, default_model.face_only()
    rows = 3 * np.asarray(full.landmarks68)[[62, 66]] + 1  # inner lips, top and bottom: y
    opening_per_shape = full.exp_basis[rows[0]] - full.exp_basis[rows[1]]
    coeffs = CoeffLayout.for_model(face).zeros()
    coeffs["exp"] = coeffs["exp"].at[int(np.argmax(opening_per_shape))].set(1.0)  # mouth open
    camera = deng_camera(224)
    r_face = render(face.to_jax(), coeffs, camera)
    r_head = render(full.to_jax(), coeffs, camera)
    face_mask, head_mask = np.asarray(r_face.mask), np.asarray(r_head.mask)
    landmarks = np.asarray(r_face.landmarks)
    mouth = np.asarray(feature_masks(jnp.asarray(landmarks), 224, 6.0)[INNER_MOUTH]) > 0.5
    opening = mouth & (face_mask < 0.5) & (head_mask > 0.5)
    assert opening.sum() > 30

    def block(center, half):
        b = np.zeros((224, 224), np.float32)
        x, y = np.round(center).astype(int)
        b[y - half : y + half, x - half : x + half] = 1
        return b * (face_mask > 0.5)

    args = (r_face.image, r_face.mask, r_head.image, r_head.mask)
    over_mouth = block(landmarks[48:68].mean(0), 30)
    region, colours = map(np.asarray, deocclusion_fill(*args, over_mouth, mouth))
    assert region[opening].min() == 1.0
    np.testing.assert_allclose(colours[opening], np.asarray(r_head.image)[opening])
    on_face = face_mask > 0.5
    np.testing.assert_allclose(colours[on_face], np.asarray(r_face.image)[on_face])
    assert region[(over_mouth == 0) & ~mouth].max() == 0.0
    on_cheek = block(landmarks[2] + [25, 0], 12)
    region, _ = map(np.asarray, deocclusion_fill(*args, on_cheek, mouth))
    assert region[opening].max() == 0.0
    np.testing.assert_allclose(region, on_cheek * np.maximum(face_mask, head_mask))
