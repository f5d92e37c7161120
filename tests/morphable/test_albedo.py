"""The fallback albedo: skin-tone mean, orthonormal smooth spatial modes, plausible samples."""

from __future__ import annotations

import numpy as np

from occface_jax.morphable import geometry
from occface_jax.morphable.albedo import SKIN_MEAN_RGB


def test_fallback_mean_and_spatial_modes(default_model):
    m = default_model
    skin = m.skin_weight > 0.5
    np.testing.assert_array_equal(
        m.albedo_mean[skin], np.broadcast_to(SKIN_MEAN_RGB, (skin.sum(), 3))
    )
    region = m.face_region
    spatial = m.albedo_basis[:, 3:].reshape(m.n_vertices, 3, -1)[region]  # (Nf, 3, K)
    # Each spatial mode lives in one channel; per channel, modes are orthogonal over the region.
    for c in range(3):
        modes = spatial[:, c, :]
        modes = modes[:, np.abs(modes).sum(0) > 0]
        gram = modes.T @ modes / region.sum()
        off = gram - np.diag(np.diag(gram))
        assert np.abs(off).max() < 1e-4 * np.diag(gram).max()
    # Global tone modes shift every vertex by the same colour.
    tone = m.albedo_basis[:, :3].reshape(m.n_vertices, 3, 3)
    assert np.ptp(tone, axis=0).max() < 1e-7


def test_random_albedo_stays_in_range(default_model):
    rng = np.random.default_rng(0)
    coeffs = rng.normal(size=(64, default_model.n_tex)).astype(np.float32)
    albedo = np.asarray(geometry.albedo(default_model, coeffs))[:, default_model.face_region]
    assert np.mean((albedo >= 0) & (albedo <= 1)) > 0.99
    assert albedo.std(axis=0).mean() > 0.05  # coefficients change the colour


def test_spatial_modes_stay_bounded_off_the_face(default_model):
    m = default_model
    spatial = np.abs(m.albedo_basis[:, 3:]).reshape(m.n_vertices, 3, -1).max(axis=(1, 2))
    assert spatial[~m.face_region].max() <= spatial[m.face_region].max() + 1e-6
