"""Verification metrics on descriptors whose angles and distances are known by construction."""

from __future__ import annotations

import numpy as np

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
