"""The landmarks protocol on a 300-W / AFLW2000-3D-like folder: predictions off by a known offset
give NME = offset / normaliser (inter-ocular and box), per subset; the .mat annotation reads the
same points as the .pts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from occface_jax.errors import OccfaceError
from occface_jax.eval.protocols import PROTOCOLS, landmarks
from occface_jax.eval.protocols.runner import Predicted, evaluate
from occface_jax.faces.landmarks_io import write_pts
from occface_jax.io import images as imageio

OFFSET = np.array([3.0, 4.0])  # 5 px per point


def _truth(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = rng.uniform(60, 140, size=(68, 2))
    points[36], points[45] = (70.0, 90.0), (130.0, 90.0)  # inter-ocular distance 60 px
    points[0], points[16] = (50.0, 40.0), (150.0, 170.0)  # box 100 x 130 px
    return points


def _write(root):
    truths = {}
    for k, subset in enumerate(("clean", "occluded")):
        for j in range(2):
            image = root / subset / f"img{j}.png"
            imageio.save_image(image, np.zeros((200, 200, 3)))
            truths[f"{subset}/img{j}.png"] = truth = _truth(10 * k + j)
            if j == 0:
                write_pts(image.with_suffix(".pts"), truth)
            else:  # AFLW2000-3D: pt3d_68 (3, 68), 0-based pixels
                pt3d = np.vstack([(truth - 0.5).T, np.zeros((1, 68))])
                scipy.io.savemat(image.with_suffix(".mat"), {"pt3d_68": pt3d})
    imageio.save_image(root / "clean" / "unannotated.png", np.zeros((8, 8, 3)))
    return truths


def test_nme_is_the_known_offset_over_the_normalisers(tmp_path):
    truths = _write(tmp_path / "faces")
    boxes = []

    def predict(image, box):
        boxes.append(box)
        truth = truths[str(image.relative_to(tmp_path / "faces"))]
        return Predicted(np.zeros((1, 3)), np.zeros((0, 3), int), np.zeros((68, 3)), truth + OFFSET)

    results = evaluate(
        PROTOCOLS["landmarks"], tmp_path / "faces", tmp_path / "out", predict, progress=False
    )
    assert results["samples"] == 4 and results["failed"] == 0
    for subset in ("clean", "occluded", "all"):
        m = results["subsets"][subset]
        assert m["nme_io"]["mean"] == pytest.approx(5.0 / 60.0, rel=1e-5)
        assert m["nme_io_inner"]["mean"] == pytest.approx(5.0 / 60.0, rel=1e-5)
        assert m["nme_box"]["mean"] == pytest.approx(5.0 / np.sqrt(100 * 130), rel=1e-5)
    assert results["subsets"]["all"]["nme_io"]["n"] == 4
    # The box handed to the predictor encloses the true landmarks.
    lo, hi = boxes[0][:2], boxes[0][2:]
    truth = truths["clean/img0.png"]
    assert np.all(truth >= lo) and np.all(truth <= hi)


def test_bad_annotations_and_empty_folders(tmp_path):
    image = tmp_path / "a.png"
    imageio.save_image(image, np.zeros((8, 8, 3)))
    write_pts(image.with_suffix(".pts"), np.zeros((5, 2)))
    with pytest.raises(OccfaceError, match="5 landmarks, expected 68"):
        landmarks.read_truth(image.with_suffix(".pts"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OccfaceError) as err:
        evaluate(PROTOCOLS["landmarks"], empty, tmp_path / "out", None, progress=False)
    assert f"{empty}: no image with a .pts or .mat annotation" in str(err.value)
    assert "expected layout" in str(err.value)
