"""Reconstruction losses: known values from their formulas, finite and correct gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.losses import recon


def _fd_grad(f, x, eps=1e-3):
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def test_identity_loss_values_and_gradient():
    a = jnp.array([[1.0, 0.0, 0.0], [1.0, 2.0, 3.0], [1.0, 1.0, 0.0]])
    b = jnp.array([[0.0, 2.0, 0.0], [2.0, 4.0, 6.0], [-3.0, -3.0, 0.0]])
    np.testing.assert_allclose(recon.identity_loss(a, b), [1.0, 0.0, 2.0], atol=1e-6)
    x = np.array([0.3, -0.2, 0.9])
    y = jnp.array([0.5, 0.1, 0.4])
    with jax.enable_x64(True):
        grad = jax.grad(lambda v: recon.identity_loss(v, y.astype(jnp.float64)))(jnp.asarray(x))
        fd = _fd_grad(
            lambda v: float(recon.identity_loss(jnp.asarray(v), y.astype(jnp.float64))), x
        )
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


def test_coefficient_prior_formula():
    ids, exps, texs = jnp.full(80, 0.5), jnp.full(64, 2.0), jnp.full(80, 1.0)
    got = recon.coefficient_prior(ids, exps, texs, w_id=1.0, w_exp=1.75e-3, w_tex=0.5)
    assert float(got) == pytest.approx(80 * 0.25 + 1.75e-3 * 64 * 4 + 0.5 * 80)


def test_photometric_loss_known_value_and_attention():
    h, w = 6, 8
    image = jnp.zeros((h, w, 3))
    rendered = image.at[:3].set(jnp.array([0.3, 0.4, 0.0]))  # distance 0.5 on the top half
    face = jnp.zeros((h, w)).at[:3].set(1.0)
    z = recon.photometric_attention(face)
    np.testing.assert_allclose(z[0, 0], 1.0)
    np.testing.assert_allclose(z[5, 0], 0.1)
    expected = (0.5 * 24 * 1.0 + 0.0) / (24 * 1.0 + 24 * 0.1)
    assert float(recon.photometric_loss(image, rendered, z)) == pytest.approx(expected, rel=1e-4)
    # An occluder over the differing pixels removes them from the loss.
    occluded = recon.photometric_attention(face, occlusion_mask=face)
    assert float(recon.photometric_loss(image, rendered, occluded)) == pytest.approx(0.0, abs=1e-5)


def test_photometric_robust_scale_known_value_and_pull():
    h, w = 4, 4
    image = jnp.zeros((h, w, 3))
    rendered = image.at[:2].set(jnp.array([0.3, 0.4, 0.0]))  # distance 0.5 on the top half
    att = jnp.ones((h, w))
    s = 0.1
    expected = 8 * s * np.log1p(0.5 / s) / 16  # s log(1 + d / s) per pixel, mean over 16
    got = recon.photometric_loss(image, rendered, att, robust_scale=s)
    assert float(got) == pytest.approx(expected, rel=1e-4)
    # A large scale is Eq. 18; a pixel's pull falls as 1 / (1 + d / s).
    plain = float(recon.photometric_loss(image, rendered, att))
    huge = float(recon.photometric_loss(image, rendered, att, robust_scale=1e4))
    assert huge == pytest.approx(plain, rel=1e-3)
    grad = jax.grad(lambda r: recon.photometric_loss(image, r, att, robust_scale=s))(rendered)
    grad_plain = jax.grad(lambda r: recon.photometric_loss(image, r, att))(rendered)
    ratio = np.linalg.norm(grad[0, 0]) / np.linalg.norm(grad_plain[0, 0])
    assert ratio == pytest.approx(1 / (1 + 0.5 / s), rel=1e-4)


def test_photometric_gradient_is_finite_at_zero_difference():
    image = jax.random.uniform(jax.random.key(0), (2, 5, 5, 3))
    att = jnp.ones((2, 5, 5))
    grad = jax.grad(lambda r: recon.photometric_loss(image, r, att).sum())(image)
    assert np.isfinite(grad).all()
    x = np.asarray(image[0, :2, :2] + 0.05, np.float64)
    with jax.enable_x64(True):
        target = jnp.asarray(image[0, :2, :2], jnp.float64)
        att2 = jnp.ones((2, 2), jnp.float64)
        g = jax.grad(lambda r: recon.photometric_loss(target, r, att2))(jnp.asarray(x))
        fd = _fd_grad(
            lambda r: float(recon.photometric_loss(target, jnp.asarray(r), att2)), x, 1e-6
        )
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-7)


def test_landmark_loss_weights_nose_and_inner_mouth():
    target = jnp.zeros((68, 2))
    for idx, weight in ((10, 1.0), (29, 20.0), (65, 20.0), (48, 1.0)):
        moved = target.at[idx].set(jnp.array([3.0, 4.0]))  # squared distance 25
        assert float(recon.landmark_loss(target, moved)) == pytest.approx(weight * 25 / 68)
    vis = jnp.ones(68).at[29].set(0.0)
    moved = target.at[29].set(jnp.array([3.0, 4.0]))
    assert float(recon.landmark_loss(target, moved, visibility=vis)) == 0.0
    grad = jax.grad(lambda p: recon.landmark_loss(target, p))(moved)
    np.testing.assert_allclose(grad[29], 2 * 20 * jnp.array([3.0, 4.0]) / 68, rtol=1e-6)


def test_total_uses_paper_weights():
    terms = {"feat": 1.0, "regu": 2.0, "phot": 3.0, "land": 4.0}
    expected = 0.2 * 1 + 3.6e-4 * 2 + 1.4 * 3 + 1.6e-3 * 4
    assert float(recon.reconstruction_loss(terms)) == pytest.approx(expected)
