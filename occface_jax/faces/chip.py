"""dlib's face-chip alignment (``get_face_chip_details`` + ``extract_image_chip``) as pure JAX functions,
so a rendered face can be cut into the 150x150 chip the identity network expects inside a jitted loss.

Coordinates follow the project convention: (x, y), x right, y down, pixel centres at integer + 0.5.
dlib itself indexes pixel centres at integers; the conversion is done here, at the boundary.

Geometry, as dlib computes it: a least-squares similarity (Umeyama; in 2-D the linear fit of
``[[a, -b], [b, a]] p + t``) from dlib's mean-face template, padded and scaled to the chip, onto the
landmarks; dlib then extracts the chip by mapping chip pixels (0, 0), (cols-1, 0), (0, rows-1) to the
corners of the rotated rectangle centred on the image of the chip centre, whose corner pixels lie
``cols * scale - 1`` apart (dlib rectangles count both end pixels), so one chip pixel spans
``(cols * scale - 1) / (cols - 1)`` image pixels. Sampling is bilinear with zeros outside the image. Difference left:
dlib first shrinks the image with a Gaussian pyramid when the face rectangle is over ~2x the chip size
(faces wider than ~200 px with padding 0.25); this function does not, so for such large faces pass a
downscaled image (or compare descriptors, which barely move: see tests/faces/test_chip.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.faces.affine import fit_similarity, warp_affine

# dlib's mean face (points 17-67 of iBUG-68 on a unit square), from dlib/image_transforms/interpolation.h
# (Boost licence); data needed to reproduce dlib's chips, not code.
_MEAN_FACE_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)  # fmt: skip
_MEAN_FACE_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)  # fmt: skip
# dlib uses points 27-54 and 60-64 of the 68 (no jaw, no eyebrows, no lower lip).
CHIP_POINT_IDS = np.array([i for i in range(27, 68) if not (55 <= i <= 59 or 65 <= i <= 67)])
_TEMPLATE68 = np.stack([_MEAN_FACE_X, _MEAN_FACE_Y], axis=1)[CHIP_POINT_IDS - 17]
# dlib's 5-point template (shape_predictor_5_face_landmarks order).
_TEMPLATE5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)


def face_chip_transform(landmarks: jax.Array, size: int = 150, padding: float = 0.25) -> jax.Array:
    """dlib's chip geometry: (..., 2, 3) affine from chip coordinates to image coordinates (both in the
    project pixel convention) for landmarks (..., 68, 2) or (..., 5, 2) (dlib 5-point order)."""
    n_points = landmarks.shape[-2]
    if n_points == 68:
        template, points = _TEMPLATE68, landmarks[..., CHIP_POINT_IDS, :]
    elif n_points == 5:
        template, points = _TEMPLATE5, landmarks
    else:
        raise ValueError(f"face_chip_transform needs 68 or 5 landmarks, got {n_points}")
    chip_points = jnp.asarray((padding + template) / (2 * padding + 1) * size, landmarks.dtype)
    # dlib works with pixel centres at integers: shift the landmarks there, and back at the end.
    similarity = fit_similarity(chip_points, points - 0.5)
    linear, shift = similarity[..., :2], similarity[..., 2]
    scale = jnp.sqrt(jnp.abs(jnp.linalg.det(linear)))
    # dlib's rectangle has width size * scale but spans (size * scale - 1) between its corner pixels,
    # which are the chip's pixels 0 and size - 1.
    step = linear * ((size - 1.0 / scale) / (size - 1.0))[..., None, None]
    centre = (
        jnp.einsum("...ij,j->...i", linear, jnp.full((2,), size / 2.0, landmarks.dtype)) + shift
    )
    corner = jnp.full((2,), (size - 1) / 2.0, landmarks.dtype)
    translation = centre - jnp.einsum("...ij,j->...i", step, corner)
    # chip index = chip coordinate - 0.5; image coordinate = image index + 0.5.
    translation = translation - 0.5 * step.sum(axis=-1) + 0.5
    return jnp.concatenate([step, translation[..., None]], axis=-1)


def extract_face_chip(
    image: jax.Array, landmarks: jax.Array, size: int = 150, padding: float = 0.25
) -> jax.Array:
    """dlib's face chip (size, size, C) of ``image`` (H, W, C) given its 68 (or 5) landmarks (x, y)."""
    return warp_affine(image, face_chip_transform(landmarks, size, padding), (size, size))
