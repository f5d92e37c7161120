"""L1 / PSNR by hand, SSIM against scikit-image's implementation (an independent reference)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from occface_jax.eval.metrics.image import (
    l1_error,
    masked_l1,
    masked_psnr,
    masked_ssim,
    psnr,
    ssim,
)


def test_l1_and_psnr_by_hand():
    truth = np.zeros((2, 8, 8, 3), np.float32)
    predicted = truth + np.array([0.1, 0.01], np.float32)[:, None, None, None]
    np.testing.assert_allclose(l1_error(predicted, truth), [0.1, 0.01], rtol=1e-6)
    np.testing.assert_allclose(psnr(predicted, truth), [20.0, 40.0], rtol=1e-5)  # 10 log10(1/e^2)


def test_ssim_matches_scikit_image():
    rng = np.random.default_rng(0)
    truth = rng.uniform(size=(40, 36, 3)).astype(np.float32)
    for noise in (0.02, 0.2):
        predicted = np.clip(truth + rng.normal(0, noise, truth.shape), 0, 1).astype(np.float32)
        reference = structural_similarity(
            predicted,
            truth,
            data_range=1.0,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert float(ssim(predicted, truth)) == pytest.approx(reference, abs=1e-4)
    assert float(ssim(truth, truth)) == pytest.approx(1.0, abs=1e-6)
    batch = ssim(np.stack([truth, 1 - truth]), np.stack([truth, truth]))
    assert batch.shape == (2,) and batch[1] < 0.5


def test_masked_metrics_score_only_the_hole():
    """Inside-the-hole scores by hand (L1, PSNR) and against scikit-image's SSIM image (the
    windows centred in the hole); an error outside the hole changes nothing; an empty hole is NaN."""
    rng = np.random.default_rng(1)
    truth = rng.uniform(size=(2, 32, 30, 3)).astype(np.float32)
    mask = np.zeros((2, 32, 30), np.float32)
    mask[0, 8:20, 6:24] = 1
    mask[1, 0:4, 0:30] = 1  # near the border: few SSIM windows centred in it
    predicted = truth.copy()
    predicted[mask > 0] += 0.05
    predicted[0, 25:, :] = 0.0  # outside the hole: must not count
    np.testing.assert_allclose(masked_l1(predicted, truth, mask), [0.05, 0.05], rtol=1e-5)
    np.testing.assert_allclose(masked_psnr(predicted, truth, mask), [26.0206] * 2, rtol=1e-4)
    scores = np.asarray(masked_ssim(predicted, truth, mask))
    for k in range(2):
        _, full = structural_similarity(
            predicted[k],
            truth[k],
            data_range=1.0,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            full=True,
        )
        inner = full[5:-5, 5:-5].mean(axis=-1)
        hole = mask[k, 5:-5, 5:-5] > 0.5
        if hole.any():
            assert scores[k] == pytest.approx(inner[hole].mean(), abs=1e-4)
        else:
            assert np.isnan(scores[k])
    empty = np.zeros_like(mask)
    assert np.isnan(np.asarray(masked_l1(predicted, truth, empty))).all()
