"""Tests of occface_jax/data/celebamask.py on a tiny fixture in the published CelebAMask-HQ layout."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.data.celebamask import CelebAMaskHQ, part_path
from occface_jax.data.errors import DatasetLayoutError, RecordError


def test_reads_the_published_layout_and_merges_parts(tmp_path, make_celebamask):
    ids = [0, 7, 2001]  # 2001 lives in mask folder 1
    make_celebamask(tmp_path, ids)
    assert part_path(tmp_path, 2001, "skin").parent.name == "1"
    ds = CelebAMaskHQ(tmp_path, image_size=32)
    assert len(ds) == 3 and ds.ids == ids
    rec = ds[2]
    assert rec["id"] == 2001 and rec["image"].shape == (32, 32, 3)
    labels = rec["labels"]
    assert labels[20, 16] == 1  # skin
    assert labels[17, 16] == 1  # nose (a face part) inside the skin
    assert labels[5, 10] == 2  # hair
    assert labels[12, 16] == 3  # eyeglasses over the skin win
    assert labels[1, 30] == 3  # hat
    assert labels[30, 16] == 0  # cloth is background
    np.testing.assert_array_equal(rec["mask"], labels == 3)
    np.testing.assert_array_equal(rec["face_region"], (labels == 1) | (labels == 3))


def test_upsampled_labels_follow_the_image(tmp_path, make_celebamask):
    make_celebamask(tmp_path, [0])
    labels = CelebAMaskHQ(tmp_path, image_size=64)[0]["labels"]
    assert labels[40, 32] == 1 and labels[24, 32] == 3  # mask (row 12 of 32) -> image row 24 of 64


def test_missing_masks_and_bad_layouts(tmp_path, make_celebamask):
    make_celebamask(tmp_path, [0, 1])
    for p in (tmp_path / "CelebAMask-HQ-mask-anno" / "0").glob("00001_*.png"):
        p.unlink()
    ds = CelebAMaskHQ(tmp_path, image_size=32)
    with pytest.raises(RecordError, match="no part masks"):
        ds[1]
    with pytest.raises(DatasetLayoutError, match="CelebA-HQ-img"):
        CelebAMaskHQ(tmp_path / "CelebA-HQ-img")
