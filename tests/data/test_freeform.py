"""Tests of occface_jax/data/freeform.py: free-form hole masks (random brush strokes)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from occface_jax.data import freeform
from occface_jax.data.freeform import box_region, free_form_mask, mask_ratio, region_box

FACE_BOX = (20.0, 16.0, 108.0, 120.0)  # a face's box in a 128 px crop


def test_masks_are_binary_and_deterministic_per_rng_seed():
    a = free_form_mask(np.random.default_rng([3, 7]), (64, 80), (5, 6, 70, 60))
    b = free_form_mask(np.random.default_rng([3, 7]), (64, 80), (5, 6, 70, 60))
    assert a.dtype == np.float32 and a.shape == (64, 80)
    assert set(np.unique(a)) <= {0.0, 1.0} and a.sum() > 0
    np.testing.assert_array_equal(a, b)
    others = [free_form_mask(np.random.default_rng([3, i]), (64, 80)) for i in range(8, 12)]
    assert all(not np.array_equal(a, o) for o in others)


def test_strokes_stay_inside_the_box_without_being_cut_by_it(monkeypatch):
    rng = np.random.default_rng(0)
    for i in range(60):
        x0, y0 = rng.uniform(-10, 50, 2)  # boxes over the image's edge too, fractional corners
        x1, y1 = x0 + rng.uniform(12, 90), y0 + rng.uniform(12, 90)
        mask = free_form_mask(np.random.default_rng(i), (96, 96), (x0, y0, x1, y1))
        rows, cols = np.nonzero(mask)
        assert len(rows) > 0
        assert (cols + 0.5 >= max(x0, 0)).all() and (cols + 0.5 < min(x1, 96)).all()
        assert (rows + 0.5 >= max(y0, 0)).all() and (rows + 0.5 < min(y1, 96)).all()
    # The strokes themselves (before the final cut to the box) bounce inside it: at most the rounding
    # of the brush's edge (under a pixel) would be cut.
    cut = [free_form_mask(np.random.default_rng(i), (128, 128), FACE_BOX) for i in range(60)]
    monkeypatch.setattr(freeform, "box_region", lambda shape, box=None: np.ones(shape, np.float32))
    for i in range(60):
        mask = free_form_mask(np.random.default_rng(i), (128, 128), FACE_BOX)
        assert mask.sum() - cut[i].sum() <= 0.01 * mask.sum()  # observed: nothing is cut
        rows, cols = np.nonzero(mask)
        assert cols.min() + 0.5 >= FACE_BOX[0] - 1 and cols.max() + 0.5 <= FACE_BOX[2] + 1
        assert rows.min() + 0.5 >= FACE_BOX[1] - 1 and rows.max() + 0.5 <= FACE_BOX[3] + 1


def test_coverage_of_the_box_is_in_a_sensible_range():
    ratios = np.array(
        [
            mask_ratio(
                free_form_mask(np.random.default_rng([1, i]), (128, 128), FACE_BOX),
                box_region((128, 128), FACE_BOX),
            )
            for i in range(200)
        ]
    )
    low, median, high = np.percentile(ratios, [0, 50, 100])
    print(
        f"free-form coverage of the box over 200 masks: {low:.3f} .. {high:.3f}, median {median:.3f}"
    )
    # observed: 0.020 .. 0.442, median 0.198 (occluders are trained at 0.1 .. 0.45 of the face)
    assert low > 0.005 and high < 0.7 and 0.1 < median < 0.35
    assert np.mean(ratios > 0.3) > 0.05  # large holes occur, not only thin scribbles


def test_masks_look_the_same_at_any_resolution():
    """Same rng, box scaled with the image: the 2x mask, averaged down by 2, is the 1x mask (up to
    the brush edge's rasterisation), and the coverage of the box matches."""
    ious, ratios = [], []
    for i in range(20):
        small = free_form_mask(np.random.default_rng(i), (64, 64), (10, 8, 54, 60))
        big = free_form_mask(np.random.default_rng(i), (128, 128), FACE_BOX)
        down = big.reshape(64, 2, 64, 2).mean(axis=(1, 3)) >= 0.5
        ious.append((down & (small > 0)).sum() / (down | (small > 0)).sum())
        ratios.append(
            (
                mask_ratio(small, box_region((64, 64), (10, 8, 54, 60))),
                mask_ratio(big, box_region((128, 128), FACE_BOX)),
            )
        )
    assert min(ious) > 0.8 and np.mean(ious) > 0.9
    ratios = np.array(ratios)
    np.testing.assert_allclose(ratios[:, 0], ratios[:, 1], atol=0.03)


@pytest.mark.parametrize("size", [48, 128])
def test_one_stroke_is_one_connected_blob(size):
    box = (0.1 * size, 0.1 * size, 0.9 * size, 0.95 * size)
    for i in range(40):
        mask = free_form_mask(np.random.default_rng([size, i]), (size, size), box, strokes=(1, 1))
        _, n = ndimage.label(mask > 0)  # 4-connectivity
        assert n == 1
        several = free_form_mask(np.random.default_rng([size, i]), (size, size), box)
        assert 1 <= ndimage.label(several > 0)[1] <= 4


def test_region_helpers_against_direct_counts():
    rng = np.random.default_rng(5)
    mask = (rng.random((30, 40)) < 0.3).astype(np.float32)
    region = np.zeros((30, 40), np.float32)
    region[5:20, 8:33] = 1
    expected = sum(mask[r, c] for r in range(5, 20) for c in range(8, 33)) / (15 * 25)
    assert mask_ratio(mask, region) == pytest.approx(expected)
    assert mask_ratio(mask) == pytest.approx(mask.mean())
    assert mask_ratio(mask, np.zeros_like(region)) == 0.0
    assert region_box(region) == (8.0, 5.0, 33.0, 20.0)
    assert region_box(np.zeros((4, 4))) is None
    # pixel centres inside (2.4, 1.5, 6.5, 3.6): columns 2..5 (centres 2.5 .. 5.5), rows 1..3
    box = box_region((8, 8), (2.4, 1.5, 6.5, 3.6))
    assert np.array_equal(np.argwhere(box.any(0)).ravel(), [2, 3, 4, 5])
    assert np.array_equal(np.argwhere(box.any(1)).ravel(), [1, 2, 3])
    np.testing.assert_array_equal(box_region((8, 8), region_box(np.ones((8, 8)))), 1)


def test_a_box_off_the_image_is_an_error():
    with pytest.raises(ValueError, match="does not overlap"):
        free_form_mask(np.random.default_rng(0), (32, 32), (40, 40, 60, 60))
