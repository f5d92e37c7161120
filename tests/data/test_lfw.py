"""Tests of occface_jax/data/lfw.py on a tiny fixture in the published LFW layout."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.lfw import LFWPairs, parse_pairs

PAIRS = """2\t2
Alice\t1\t2
Bob\t1\t3
Alice\t1\tBob\t2
Bob\t3\tCarol\t1
Carol\t1\t2
Alice\t2\t2
Carol\t2\tAlice\t1
Bob\t2\tAlice\t2
"""


def write_lfw(root):
    images = {"Alice": 2, "Bob": 3, "Carol": 2}
    for name, count in images.items():
        for k in range(1, count + 1):
            folder = root / "lfw" / name
            folder.mkdir(parents=True, exist_ok=True)
            value = hash((name, k)) % 200 + 20
            cv2.imwrite(str(folder / f"{name}_{k:04d}.jpg"), np.full((25, 25, 3), value, np.uint8))
    (root / "pairs.txt").write_text(PAIRS)


def test_parse_pairs_counts_folds_and_labels():
    pairs = parse_pairs(PAIRS)
    assert len(pairs) == 8
    assert [p.same for p in pairs] == [True, True, False, False, True, True, False, False]
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert (pairs[2].name_a, pairs[2].number_a, pairs[2].name_b, pairs[2].number_b) == (
        "Alice",
        1,
        "Bob",
        2,
    )
    dev = parse_pairs("3\nA\t1\t2\nB\t1\t2\nA\t1\tB\t2\n")  # pairsDevTrain.txt style header
    assert [p.fold for p in dev] == [0, 0, 0] and [p.same for p in dev] == [True, True, False]


def test_reads_person_folders(tmp_path):
    write_lfw(tmp_path)
    ds = LFWPairs(tmp_path, image_size=16)
    rec = ds[3]
    assert rec["names"] == "Bob|Carol" and not rec["same"] and rec["fold"] == 0
    assert rec["image_a"].shape == (16, 16, 3)
    expected = cv2.imread(str(tmp_path / "lfw" / "Bob" / "Bob_0003.jpg"))[0, 0, 0] / 255
    assert abs(rec["image_a"][8, 8, 0] - expected) < 0.02


def test_bad_pairs_files(tmp_path):
    with pytest.raises(DatasetLayoutError, match="pairs"):
        LFWPairs(tmp_path)
    with pytest.raises(DatasetLayoutError, match="3 or 4"):
        parse_pairs("1\t1\nAlice\t1\n")
