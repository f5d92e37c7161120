"""Verification metrics on descriptors whose angles and distances are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.eval.metrics.verification import (
    cosine_similarity,
    decision_agreement,
    pairwise_distances,
    upper_pairs,
)


def test_cosine_similarity_by_hand():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    b = np.array([[0.0, 3.0], [1.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(cosine_similarity(a, b), [0.0, np.sqrt(0.5), -1.0])
    np.testing.assert_allclose(cosine_similarity(a[1], 5 * a[1]), 1.0, rtol=1e-12)


def test_pairwise_distances_and_agreement_by_hand():
    points = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.5]])
    d = pairwise_distances(points)
    expected = np.array([[0.0, 5.0, 0.5], [5.0, 0.0, np.hypot(3, 3.5)], [0.5, np.hypot(3, 3.5), 0]])
    np.testing.assert_allclose(d, expected)
    np.testing.assert_allclose(upper_pairs(d), [5.0, 0.5, np.hypot(3, 3.5)])
    # At 0.6 the pairs decide (different, same, different); shifting the first pair to 0.55 flips
    # one of three decisions.
    other = d.copy()
    other[0, 1] = other[1, 0] = 0.55
    assert decision_agreement(d, d, 0.6) == 1.0
    np.testing.assert_allclose(decision_agreement(d, other, 0.6), 2 / 3)


def test_threshold_roc_auc_and_eer_by_hand():
    from occface_jax.eval.metrics import verification as v

    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1])
    same = np.array([True, True, True, False, False, False])
    threshold = v.best_threshold(scores, same)
    assert 0.7 < threshold <= 0.8 or 0.2 < threshold <= 0.3
    assert v.threshold_accuracy(scores, same, threshold) == 5 / 6
    # AUC = share of (same, different) pairs ordered right: 3 + 3 + 2 of 9.
    assert v.roc_auc(scores, same) == pytest.approx(8 / 9, abs=1e-12)
    fpr, tpr = v.roc_curve(scores, same)
    assert fpr.tolist() == [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1]
    assert tpr.tolist() == [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1]
    assert v.equal_error_rate(scores, same) == pytest.approx(1 / 3, abs=1e-12)
    separable = np.array([0.9, 0.8, 0.1, 0.2])
    sep_same = np.array([True, True, False, False])
    assert v.roc_auc(separable, sep_same) == 1.0 and v.equal_error_rate(separable, sep_same) == 0.0


def test_auc_is_the_rank_statistic_and_folds_hold_out_their_threshold():
    from occface_jax.eval.metrics import verification as v

    rng = np.random.default_rng(0)
    same = rng.uniform(size=400) < 0.5
    scores = np.round(rng.normal(same * 1.0, 1.0), 1)  # rounded: many ties
    pos, neg = scores[same], scores[~same]
    rank = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert v.roc_auc(scores, same) == pytest.approx(rank, abs=1e-12)
    folds = np.arange(400) % 10
    accuracies, thresholds = v.fold_accuracies(scores, same, folds)
    assert accuracies.shape == thresholds.shape == (10,)
    for k in (0, 7):  # each fold's threshold is the best on the other nine
        rest = folds != k
        assert thresholds[k] == v.best_threshold(scores[rest], same[rest])
        assert accuracies[k] == v.threshold_accuracy(scores[~rest], same[~rest], thresholds[k])
    # Two well-separated classes: about the Bayes accuracy Phi(0.5) = 0.69.
    assert 0.62 < accuracies.mean() < 0.76
