"""Landmark metrics against their definitions, computed point by point or by hand."""

from __future__ import annotations

import numpy as np

from occface_jax.eval.metrics.landmarks import (
    INNER_POINTS,
    box_nme,
    landmark_nme,
    point_errors,
    pooled_rms,
)


def test_nme_matches_definition_and_batches():
    rng = np.random.default_rng(5)
    truth = rng.uniform(0, 200, size=(3, 68, 2))
    predicted = truth + rng.normal(scale=2.0, size=truth.shape)
    expected = [
        np.mean([np.hypot(*(p[i] - t[i])) for i in range(68)]) / np.hypot(*(t[36] - t[45]))
        for p, t in zip(predicted, truth, strict=True)
    ]
    np.testing.assert_allclose(landmark_nme(predicted, truth), expected, rtol=1e-5)
    # Scale invariance: scaling both sets leaves the NME unchanged.
    np.testing.assert_allclose(landmark_nme(3 * predicted, 3 * truth), expected, rtol=1e-5)


def test_point_errors_and_nme_over_a_subset_by_hand():
    truth = np.zeros((68, 2))
    truth[36], truth[45] = (0.0, 0.0), (10.0, 0.0)  # eye corners 10 apart
    predicted = truth.copy()
    predicted[0] += (3.0, 4.0)  # a jaw point 5 off
    predicted[30] += (0.0, 2.0)  # the nose tip 2 off
    errors = np.asarray(point_errors(predicted, truth))
    assert errors.shape == (68,) and errors[0] == 5.0 and errors[30] == 2.0
    assert np.count_nonzero(errors) == 2
    np.testing.assert_allclose(float(landmark_nme(predicted, truth)), 7 / 68 / 10, rtol=1e-6)
    inner = float(landmark_nme(predicted, truth, points=INNER_POINTS))
    np.testing.assert_allclose(inner, 2 / 51 / 10, rtol=1e-6)
    listed = float(landmark_nme(predicted, truth, points=[0, 30, 31, 32]))
    np.testing.assert_allclose(listed, 7 / 4 / 10, rtol=1e-6)
    # Another normaliser pair (36, 0): 20 apart once point 0 moves.
    truth[0] = (0.0, 20.0)
    predicted[0] = truth[0] + (3.0, 4.0)
    np.testing.assert_allclose(float(landmark_nme(predicted, truth, (36, 0))), 7 / 68 / 20)


def test_pooled_rms_by_hand():
    assert pooled_rms([np.array([3.0, 4.0]), np.array([]), np.array([[0.0]])]) == np.sqrt(25 / 3)
    assert np.isnan(pooled_rms([])) and np.isnan(pooled_rms([np.zeros(0)]))


def test_box_nme_by_hand_and_batched():
    # Truth spans a 10 x 40 box (sqrt area 20); every point 5 px off (3, 4): NME 5 / 20.
    rng = np.random.default_rng(2)
    truth = np.concatenate([[[0.0, 0.0], [10.0, 40.0]], rng.uniform([0, 0], [10, 40], (66, 2))])
    predicted = truth + np.array([3.0, 4.0])
    assert np.isclose(float(box_nme(predicted, truth)), 0.25)
    # Only the first two points moved (by 10): mean error over those two is 10 -> 0.5; the box
    # stays that of all the true points.
    moved = truth.copy()
    moved[:2] += [6.0, 8.0]
    assert np.isclose(float(box_nme(moved, truth, points=[0, 1])), 0.5)
    assert np.isclose(float(box_nme(moved, truth)), 20.0 / 68 / 20.0)
    batch = np.stack([predicted, moved])
    np.testing.assert_allclose(box_nme(batch, np.stack([truth, truth])), [0.25, 1 / 68], rtol=1e-6)
