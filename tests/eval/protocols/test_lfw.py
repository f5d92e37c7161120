"""LFW on a folder in the published layout (pairs.txt with 2 folds, person folders): identity
coefficients that separate the people give 100 % in every fold, EER 0, AUC 1; an image without a
face drops its pairs (counted); a missing image is one layout line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from occface_jax.errors import OccfaceError
from occface_jax.eval.protocols import PROTOCOLS
from occface_jax.eval.protocols.runner import Predicted, evaluate
from occface_jax.io import images as imageio

PEOPLE = ("Ann_A", "Bob_B", "Cy_C", "Di_D")
MATCHED = [
    ("Ann_A", 1, 2),
    ("Bob_B", 1, 2),
    ("Cy_C", 1, 2),
    ("Di_D", 1, 2),
    ("Ann_A", 1, 3),
    ("Cy_C", 2, 3),
]
MISMATCHED = [
    ("Ann_A", 1, "Bob_B", 1),
    ("Cy_C", 1, "Di_D", 2),
    ("Bob_B", 2, "Cy_C", 3),
    ("Ann_A", 2, "Di_D", 1),
    ("Ann_A", 3, "Cy_C", 1),
    ("Bob_B", 1, "Di_D", 2),
]


def _write(root):
    lines = ["2 3"]
    for fold in range(2):
        lines += [f"{n} {a} {b}" for n, a, b in MATCHED[3 * fold : 3 * fold + 3]]
        lines += [f"{n} {a} {m} {b}" for n, a, m, b in MISMATCHED[3 * fold : 3 * fold + 3]]
    root.mkdir(parents=True)
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    for person in PEOPLE:
        for k in (1, 2, 3):
            imageio.save_image(
                root / "lfw" / person / f"{person}_{k:04d}.jpg", np.zeros((16, 16, 3))
            )


def _predictor(fail=()):
    base = {p: np.random.default_rng(i).normal(size=80) for i, p in enumerate(PEOPLE)}

    def predict(image, box):
        if image.stem in fail:
            raise OccfaceError("no face found")
        person = image.parent.name
        jitter = np.random.default_rng(hash(image.stem) % 2**32).normal(size=80) * 0.1
        return Predicted(
            np.zeros((1, 3)),
            np.zeros((0, 3), int),
            np.zeros((68, 3)),
            np.zeros((68, 2)),
            identity=base[person] + jitter,
        )

    return predict


def test_separable_identities_verify_perfectly(tmp_path):
    _write(tmp_path / "LFW")
    results = evaluate(
        PROTOCOLS["lfw"], tmp_path / "LFW", tmp_path / "out", _predictor(), progress=False
    )
    assert results["samples"] == 10 and results["pairs"] == 12 and results["pairs_missing"] == 0
    assert results["accuracy"]["folds"] == [1.0, 1.0]
    assert results["one_minus_eer"] == 1.0 and results["auc"] == 1.0
    assert results["roc"]["fpr"][0] == 0.0 and results["roc"]["tpr"][-1] == 1.0
    roc = imageio.load_image(tmp_path / "out" / "roc.png").pixels
    # A perfect verifier: the curve runs up the left edge and along the top (dark pixels there).
    assert (
        roc.shape == (320, 320, 3)
        and roc[32:288, 31:35].min() < 0.2
        and roc[30:34, 32:288].min() < 0.2
    )
    assert (
        "| 12 | 0 | 100.00 ± 0.00 | 100.00 | 100.00 |"
        in (tmp_path / "out" / "results.md").read_text()
    )


def test_failed_images_drop_their_pairs_and_missing_images_name_the_layout(tmp_path):
    _write(tmp_path / "LFW")
    out = evaluate(
        PROTOCOLS["lfw"],
        tmp_path / "LFW",
        tmp_path / "out",
        _predictor(fail=("Ann_A_0001",)),
        progress=False,
    )
    assert out["failed"] == 1 and out["pairs_missing"] == 3  # Ann_A_0001 is in 3 pairs
    assert out["pairs"] == 9
    (tmp_path / "LFW" / "lfw" / "Di_D" / "Di_D_0002.jpg").unlink()
    with pytest.raises(OccfaceError) as err:
        evaluate(PROTOCOLS["lfw"], tmp_path / "LFW", tmp_path / "o2", _predictor(), progress=False)
    assert "Di_D_0002.jpg: missing image of pairs.txt; expected layout: ROOT/pairs.txt" in str(
        err.value
    )


def test_occluded_images_are_scored_beside_the_clean_ones(tmp_path):
    """``occluders=glasses``: each image again with glasses pasted; a predictor that reads the
    identity from the image (a fixed pixel) keeps clean pairs perfect, an occluded image without
    a face drops only its occluded pairs, and an unknown kind is one line."""
    _write(tmp_path / "LFW")
    base = {p: np.random.default_rng(i).normal(size=80) for i, p in enumerate(PEOPLE)}
    occluded_seen = []

    def predict(image, box):
        if not isinstance(image, Path):  # the occluded copy: an array, glasses pasted over it
            assert image.shape == (16, 16, 3) and float(np.abs(image).max()) > 0
            occluded_seen.append(image)
            if len(occluded_seen) == 1:
                raise OccfaceError("no face found")
            return Predicted(
                np.zeros((1, 3)), np.zeros((0, 3), int), np.zeros((68, 3)), np.zeros((68, 2)),
                identity=np.random.default_rng(len(occluded_seen)).normal(size=80),
            )  # fmt: skip
        return Predicted(
            np.zeros((1, 3)), np.zeros((0, 3), int), np.zeros((68, 3)), np.zeros((68, 2)),
            identity=base[image.parent.name],
        )  # fmt: skip

    out = evaluate(
        PROTOCOLS["lfw"],
        tmp_path / "LFW",
        tmp_path / "out",
        predict,
        options={"occluders": "glasses"},
        progress=False,
    )
    assert out["failed"] == 0 and out["accuracy"]["mean"] == 1.0
    assert len(occluded_seen) == 10  # each of the 10 distinct images of the pairs once
    occluded = out["occluded"]
    assert occluded["pairs"] + occluded["pairs_missing"] == 12 and occluded["pairs_missing"] >= 1
    assert occluded["accuracy"]["mean"] < 1.0  # random identities: no longer separable
    assert (tmp_path / "out" / "roc_occluded.png").is_file()
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| clean | 12 | 0 | 100.00 ± 0.00 |" in table and "| occluded |" in table
    with pytest.raises(OccfaceError, match="lfw: occluders='gloves': unknown 'gloves'"):
        evaluate(
            PROTOCOLS["lfw"],
            tmp_path / "LFW",
            tmp_path / "o3",
            predict,
            options={"occluders": "gloves"},
            progress=False,
        )
