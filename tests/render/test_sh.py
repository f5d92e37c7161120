"""SH lighting against the Lambertian convolution integral (Ramamoorthi & Hanrahan 2001).

Deng et al.'s kernel constants a_l = (pi, 2 pi / sqrt 3, 2 pi / sqrt 8) are those of their code; the exact
half-cosine kernel has A_l = (pi, 2 pi / 3, pi / 4), so their band-1 and band-2 light coefficients are
those of a radiance scaled by a_l / A_l. The tests check the basis against that formula.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.render.sh import SH_A, irradiance, light_matrix, sh_basis

BAND_OF = np.array([0, 1, 1, 1, 2, 2, 2, 2, 2])
LAMBERT_A = np.array([np.pi, 2.0 * np.pi / 3.0, np.pi / 4.0])  # exact half-cosine kernel


def _sphere_points(n: int) -> np.ndarray:
    """Fibonacci-lattice directions: an equal-weight quadrature on the unit sphere."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = np.pi * (1.0 + 5**0.5) * i
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def test_basis_is_lambertian_kernel_times_orthonormal_sh():
    dirs = _sphere_points(40000)
    basis = np.asarray(sh_basis(jnp.asarray(dirs, jnp.float32)), np.float64)
    orthonormal = basis / np.array(SH_A)[BAND_OF]
    gram = orthonormal.T @ orthonormal * (4.0 * np.pi / len(dirs))
    np.testing.assert_allclose(gram, np.eye(9), atol=2e-3)


def test_irradiance_equals_cosine_weighted_radiance_integral():
    """E(n) = integral of max(0, n.w) L(w) dw, computed by quadrature."""
    rng = np.random.default_rng(0)
    gamma = rng.normal(0, 0.3, 9)
    dirs = _sphere_points(60000)
    basis = np.asarray(sh_basis(jnp.asarray(dirs, jnp.float32)), np.float64)
    orthonormal = basis / np.array(SH_A)[BAND_OF]
    # Radiance with SH coefficients gamma_k a_l / A_l, so that E(n) = sum_k gamma_k a_l Y_k(n).
    radiance = orthonormal @ (gamma * (np.array(SH_A) / LAMBERT_A)[BAND_OF])
    normals = _sphere_points(7) * np.array([1.0, -1.0, 1.0])
    integral = np.maximum(normals @ dirs.T, 0.0) @ radiance * (4.0 * np.pi / len(dirs))
    ours = irradiance(
        jnp.asarray(normals, jnp.float32), jnp.asarray(gamma, jnp.float32), ambient=0.0
    )
    np.testing.assert_allclose(np.asarray(ours)[:, 0], integral, rtol=2e-3, atol=2e-3)


def test_rgb_layout_ambient_and_mono():
    rng = np.random.default_rng(1)
    normals = _sphere_points(5)
    rgb = rng.normal(0, 0.2, 27).astype(np.float32)
    ours = np.asarray(irradiance(jnp.asarray(normals), jnp.asarray(rgb), ambient=0.8))
    basis = np.asarray(sh_basis(jnp.asarray(normals)))
    for channel in range(3):  # channel-major, 0.8 added to each channel's first coefficient
        gamma = rgb[9 * channel : 9 * channel + 9] + np.eye(9)[0] * 0.8
        np.testing.assert_allclose(ours[:, channel], basis @ gamma, rtol=1e-5, atol=1e-6)
    mono = np.asarray(irradiance(jnp.asarray(normals), jnp.asarray(rgb[:9])))
    np.testing.assert_allclose(mono, np.repeat(mono[:, :1], 3, axis=1))
    with pytest.raises(ValueError, match="27"):
        light_matrix(jnp.zeros(8))
