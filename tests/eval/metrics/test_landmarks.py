"""Landmark NME against its definition computed point by point."""

from __future__ import annotations

import numpy as np

from occface_jax.eval.metrics.landmarks import landmark_nme


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
