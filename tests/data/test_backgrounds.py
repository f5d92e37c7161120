"""Tests of occface_jax/data/backgrounds.py: ranges, determinism, smoothness of the noise."""

from __future__ import annotations

import numpy as np

from occface_jax.data import backgrounds


def test_backgrounds_are_deterministic_images_in_range():
    for seed in range(12):
        a = backgrounds.random_background(np.random.default_rng(seed), (40, 56))
        b = backgrounds.random_background(np.random.default_rng(seed), (40, 56))
        assert a.shape == (40, 56, 3) and a.dtype == np.float32
        assert a.min() >= 0 and a.max() <= 1
        np.testing.assert_array_equal(a, b)
    first = backgrounds.random_background(np.random.default_rng(0), (40, 56))
    assert not np.array_equal(
        first, backgrounds.random_background(np.random.default_rng(1), (40, 56))
    )


def test_value_noise_is_smooth_compared_with_white_noise():
    rng = np.random.default_rng(0)
    noise = backgrounds.value_noise(rng, (64, 64))
    white = rng.uniform(0, 1, (64, 64, 3))
    step = np.abs(np.diff(noise, axis=1)).mean()
    assert step < 0.1 * np.abs(np.diff(white, axis=1)).mean()
    assert noise.std() > 0.02


def test_photo_backgrounds_are_bundled_rgb_images():
    photos = backgrounds.photo_backgrounds()
    assert len(photos) >= 8
    assert all(p.ndim == 3 and p.shape[2] == 3 and p.max() <= 1 for p in photos)
