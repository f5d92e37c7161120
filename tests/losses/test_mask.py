"""Mask losses against their textbook formulas, at extreme logits, and by finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.losses.mask import sigmoid_bce, soft_dice_loss


def test_bce_matches_the_probability_formula_and_stays_finite():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (3, 8, 8))
    target = (rng.uniform(size=(3, 8, 8)) > 0.5).astype(np.float64)
    p = 1 / (1 + np.exp(-logits))
    expected = np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p)), axis=(1, 2))
    with jax.enable_x64(True):
        got = np.asarray(sigmoid_bce(jnp.asarray(logits), jnp.asarray(target)))
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    extreme = jnp.array([[[300.0, -300.0]]])
    loss = sigmoid_bce(extreme, jnp.array([[[0.0, 1.0]]]))
    np.testing.assert_allclose(np.asarray(loss), [300.0], rtol=1e-6)  # log(1 + e^300) = 300
    grad = jax.grad(lambda x: sigmoid_bce(x, jnp.zeros_like(x)).sum())(extreme)
    assert np.isfinite(np.asarray(grad)).all()


def test_dice_known_values_and_gradient():
    target = jnp.zeros((1, 4, 4)).at[0, :2, :2].set(1.0)
    perfect = jnp.where(target > 0, 50.0, -50.0)
    assert float(soft_dice_loss(perfect, target)[0]) < 1e-6
    # p = 0.5 everywhere: overlap 2, sums 8 + 4 -> 1 - (4 + 1) / (12 + 1)
    half = jnp.zeros((1, 4, 4))
    np.testing.assert_allclose(float(soft_dice_loss(half, target)[0]), 1 - 5 / 13, rtol=1e-6)
    assert float(soft_dice_loss(jnp.full((1, 4, 4), -50.0), jnp.zeros((1, 4, 4)))[0]) < 1e-6
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        x = jnp.asarray(rng.normal(size=(1, 4, 4)))
        t = jnp.asarray(target, jnp.float64)
        g = np.asarray(jax.grad(lambda v: soft_dice_loss(v, t).sum())(x))
        e = np.zeros((1, 4, 4))
        e[0, 1, 2] = 1e-6
        fd = (soft_dice_loss(x + e, t) - soft_dice_loss(x - e, t))[0] / 2e-6
        np.testing.assert_allclose(g[0, 1, 2], float(fd), rtol=1e-6)
