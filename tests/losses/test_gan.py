"""De-occlusion GAN losses (Eq. 2-6) against hand-computed values and numpy loops, at extreme logits,
and by finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from occface_jax.losses import gan


def _scales(logits_list, features_list=None):
    """Discriminator outputs from numpy logits (and feature lists)."""
    features_list = features_list or [[] for _ in logits_list]
    return [
        (jnp.asarray(lg), [jnp.asarray(f) for f in fs])
        for lg, fs in zip(logits_list, features_list, strict=True)
    ]


def _softplus(x):
    return np.logaddexp(0.0, x)


def _np_adversarial(real, fake, kind):
    """numpy reference of (D loss, G loss) for one scale, (B, h, w) -> (B,), from the probability
    forms where they are the definitions."""
    axes = (1, 2)
    if kind in ("minimax", "nonsaturating"):
        d_real, d_fake = 1 / (1 + np.exp(-real)), 1 / (1 + np.exp(-fake))
        d = -np.mean(np.log(d_real), axes) - np.mean(np.log(1 - d_fake), axes)
        g = (
            np.mean(np.log(1 - d_fake), axes)
            if kind == "minimax"
            else -np.mean(np.log(d_fake), axes)
        )
    elif kind == "hinge":
        d = np.mean(np.maximum(0, 1 - real), axes) + np.mean(np.maximum(0, 1 + fake), axes)
        g = -np.mean(fake, axes)
    else:
        d = 0.5 * np.mean((real - 1) ** 2, axes) + 0.5 * np.mean(fake**2, axes)
        g = 0.5 * np.mean((fake - 1) ** 2, axes)
    return d, g


def test_known_values_at_hand_made_logits():
    zeros = _scales([np.zeros((2, 3, 3))])
    log2 = np.log(2.0)
    d = gan.discriminator_loss(zeros, zeros, "minimax")
    np.testing.assert_allclose(np.asarray(d), [2 * log2] * 2, rtol=1e-6)  # D = 1/2: 2 log 2
    np.testing.assert_allclose(np.asarray(gan.generator_adversarial_loss(zeros, "minimax")), -log2)
    np.testing.assert_allclose(
        np.asarray(gan.generator_adversarial_loss(zeros, "nonsaturating")), log2, rtol=1e-6
    )
    # hinge: real logits 0.5 and 2 -> relu(1 - r) = 0.5, 0; fake -2 and 0.25 -> relu(1 + f) = 0, 1.25
    real = _scales([np.array([[[0.5, 2.0]]])])
    fake = _scales([np.array([[[-2.0, 0.25]]])])
    np.testing.assert_allclose(np.asarray(gan.discriminator_loss(real, fake, "hinge")), [0.875])
    np.testing.assert_allclose(np.asarray(gan.generator_adversarial_loss(fake, "hinge")), [0.875])
    # least squares: 1/2 mean((r - 1)^2) = 1/2 (0.25 + 1) / 2; 1/2 mean(f^2) = 1/2 (4 + 1/16) / 2
    np.testing.assert_allclose(
        np.asarray(gan.discriminator_loss(real, fake, "least_squares")),
        [0.3125 + 1.015625],
        rtol=1e-6,
    )
    np.testing.assert_allclose(  # 1/2 (9 + 0.5625) / 2
        np.asarray(gan.generator_adversarial_loss(fake, "least_squares")), [2.390625], rtol=1e-6
    )


@pytest.mark.parametrize("kind", gan.ADVERSARIAL_KINDS)
def test_every_kind_matches_numpy_and_averages_over_scales(kind):
    rng = np.random.default_rng(0)
    shapes = [(3, 4, 4), (3, 2, 2)]  # two scales of different patch grids
    real = [rng.normal(0, 2, s) for s in shapes]
    fake = [rng.normal(0, 2, s) for s in shapes]
    refs = [_np_adversarial(r, f, kind) for r, f in zip(real, fake, strict=True)]
    with jax.enable_x64(True):
        d = gan.discriminator_loss(_scales(real), _scales(fake), kind)
        g = gan.generator_adversarial_loss(_scales(fake), kind)
    assert d.shape == g.shape == (3,)
    np.testing.assert_allclose(np.asarray(d), (refs[0][0] + refs[1][0]) / 2, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(g), (refs[0][1] + refs[1][1]) / 2, rtol=1e-10)


def test_extreme_logits_stay_finite_with_the_right_limits():
    big = 100.0
    sure_real, sure_fake = _scales([np.full((1, 2, 2), big)]), _scales([np.full((1, 2, 2), -big)])
    for kind in ("minimax", "nonsaturating"):
        # D right: loss -> 0; D wrong: -log sigmoid(-100) = 100 per term.
        assert float(gan.discriminator_loss(sure_real, sure_fake, kind)[0]) < 1e-30
        np.testing.assert_allclose(
            float(gan.discriminator_loss(sure_fake, sure_real, kind)[0]), 2 * big, rtol=1e-6
        )
    # minimax G: log(1 - sigmoid(f)) -> -f for f -> +inf, -> 0 for f -> -inf
    np.testing.assert_allclose(
        float(gan.generator_adversarial_loss(sure_real, "minimax")[0]), -big, rtol=1e-6
    )
    assert abs(float(gan.generator_adversarial_loss(sure_fake, "minimax")[0])) < 1e-30
    # non-saturating G: -log sigmoid(f) -> -f for f -> -inf (the gradient does not vanish)
    np.testing.assert_allclose(
        float(gan.generator_adversarial_loss(sure_fake, "nonsaturating")[0]), big, rtol=1e-6
    )
    for kind in gan.ADVERSARIAL_KINDS:
        for logits in (big, -big):
            x = jnp.full((1, 2, 2), logits)
            grads = jax.grad(
                lambda r, f, kind=kind: (
                    gan.discriminator_loss([(r, [])], [(f, [])], kind).sum()
                    + gan.generator_adversarial_loss([(f, [])], kind).sum()
                ),
                argnums=(0, 1),
            )(x, -x)
            assert all(np.isfinite(np.asarray(g)).all() for g in grads)
    g = jax.grad(lambda f: gan.generator_adversarial_loss([(f, [])], "nonsaturating").sum())(
        jnp.full((1, 1, 1), -big)
    )
    np.testing.assert_allclose(np.asarray(g), [[[-1.0]]], rtol=1e-6)  # still pulls at full strength


def test_unknown_kind_is_one_line():
    x = _scales([np.zeros((1, 1, 1))])
    for call in (
        lambda: gan.discriminator_loss(x, x, "wasserstein"),
        lambda: gan.generator_adversarial_loss(x, "wasserstein"),
    ):
        with pytest.raises(ValueError, match="unknown adversarial loss kind 'wasserstein'") as err:
            call()
        assert "\n" not in str(err.value) and "least_squares" in str(err.value)


def test_feature_matching_matches_a_numpy_loop_and_stops_the_real_gradient():
    rng = np.random.default_rng(1)
    layer_shapes = [[(2, 8, 8, 3), (2, 4, 4, 5)], [(2, 4, 4, 3), (2, 2, 2, 5), (2, 1, 1, 7)]]
    real_f = [[rng.normal(size=s) for s in scale] for scale in layer_shapes]
    fake_f = [[rng.normal(size=s) for s in scale] for scale in layer_shapes]
    expected = np.zeros(2)
    for rs, fs in zip(real_f, fake_f, strict=True):
        for b in range(2):
            for r, f in zip(rs, fs, strict=True):
                expected[b] += np.sum(np.abs(r[b] - f[b])) / r[b].size / len(layer_shapes)
    logits = [np.zeros((2, 1, 1))] * 2
    with jax.enable_x64(True):
        real, fake = _scales(logits, real_f), _scales(logits, fake_f)
        got = gan.feature_matching_loss(real, fake)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-10)

        def loss(real_layer, fake_layer):
            r = [(real[0][0], [real_layer, real[0][1][1]]), real[1]]
            f = [(fake[0][0], [fake_layer, fake[0][1][1]]), fake[1]]
            return gan.feature_matching_loss(r, f).sum()

        g_real, g_fake = jax.grad(loss, argnums=(0, 1))(real[0][1][0], fake[0][1][0])
    assert not np.asarray(g_real).any()  # real activations are constants
    # d/df of |f - r| / N / scales = sign(f - r) / (8 * 8 * 3) / 2 per element
    np.testing.assert_allclose(
        np.asarray(g_fake), np.sign(fake_f[0][0] - real_f[0][0]) / (8 * 8 * 3) / 2, rtol=1e-12
    )


def test_masked_l1_divides_by_the_mask_size():
    h = w = 8
    target = jnp.zeros((1, h, w, 3))
    small = jnp.zeros((1, h, w)).at[0, :2, :4].set(1.0)  # 8 pixels
    large = jnp.zeros((1, h, w)).at[0, :4, :4].set(1.0)  # 16 pixels
    # error 0.3 in every channel over exactly the mask: the loss is that per-pixel error, any size
    for mask in (small, large):
        predicted = 0.3 * mask[..., None] * jnp.ones(3)
        np.testing.assert_allclose(
            float(gan.masked_l1_loss(predicted, target, mask)[0]), 0.3, rtol=1e-6
        )
    # the same error outside the mask counts too: sum |d| / (S_m C) = (8 + 16) * 3 * 0.3 / (8 * 3)
    predicted = 0.3 * (small + large)[..., None] * jnp.ones(3)  # 0.6 on the small block's 8 pixels
    np.testing.assert_allclose(
        float(gan.masked_l1_loss(predicted, target, small)[0]),
        (8 * 0.6 + 8 * 0.3) * 3 / (8 * 3),
        rtol=1e-6,
    )
    error_off_mask = 0.5 * (1.0 - large)[..., None] * jnp.ones(3)  # 48 pixels outside, none inside
    np.testing.assert_allclose(
        float(gan.masked_l1_loss(error_off_mask, target, large)[0]), 48 * 0.5 / 16, rtol=1e-6
    )
    # empty mask: the summed error over C (mask size floored at one pixel), finite, 0 if no error
    empty = jnp.zeros((2, h, w))
    values = gan.masked_l1_loss(jnp.stack([target[0], target[0] + 0.1]), target.repeat(2, 0), empty)
    np.testing.assert_allclose(np.asarray(values), [0.0, h * w * 0.1], rtol=1e-5)
    g = jax.grad(lambda p: gan.masked_l1_loss(p, target, empty[:1]).sum())(target + 0.1)
    assert np.isfinite(np.asarray(g)).all()


def test_gram_matrix_matches_numpy_einsum():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(2, 5, 3, 4))
    expected = np.einsum("bhwc,bhwd->bcd", f, f) / (4 * 5 * 3)
    with jax.enable_x64(True):
        got = np.asarray(gan.gram_matrix(jnp.asarray(f)))
    assert got.shape == (2, 4, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(got, np.swapaxes(got, 1, 2))


def test_style_and_perceptual_losses_match_numpy():
    rng = np.random.default_rng(3)
    shapes = [(2, 6, 6, 3), (2, 3, 3, 8)]
    pred = [rng.normal(size=s) for s in shapes]
    targ = [rng.normal(size=s) for s in shapes]
    style, content = np.zeros(2), np.zeros(2)
    for p, t in zip(pred, targ, strict=True):
        _, h, w, c = p.shape
        for b in range(2):
            gp = p[b].reshape(-1, c).T @ p[b].reshape(-1, c) / (c * h * w)
            gt = t[b].reshape(-1, c).T @ t[b].reshape(-1, c) / (c * h * w)
            style[b] += np.mean(np.abs(gp - gt))
            content[b] += np.mean(np.abs(p[b] - t[b]))
    with jax.enable_x64(True):
        jp, jt = [jnp.asarray(x) for x in pred], [jnp.asarray(x) for x in targ]
        np.testing.assert_allclose(np.asarray(gan.style_loss(jp, jt)), style, rtol=1e-10)
        np.testing.assert_allclose(np.asarray(gan.perceptual_loss(jp, jt)), content, rtol=1e-10)
        assert float(gan.style_loss(jt, jt).sum()) == 0.0


def test_finite_difference_gradients_of_every_loss():
    """check_grads (float64, reverse mode) at points away from the |x| and relu kinks."""
    rng = np.random.default_rng(4)

    def away_from_zero(shape, offset=0.0):
        x = rng.uniform(0.2, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
        return x + offset

    with jax.enable_x64(True):
        real = jnp.asarray(away_from_zero((2, 3, 3), offset=0.0) * 0.5 + 2.0)  # hinge: 1 - r < 0
        real_in = jnp.asarray(rng.uniform(-0.8, 0.8, (2, 3, 3)))  # hinge: 1 - r > 0
        fake = jnp.asarray(rng.uniform(-0.8, 0.8, (2, 3, 3)))
        for kind in gan.ADVERSARIAL_KINDS:
            for r in (real, real_in):
                check_grads(
                    lambda r, f, kind=kind: gan.discriminator_loss(
                        [(r, []), (r[:, :2, :2], [])], [(f, []), (f[:, :2, :2], [])], kind
                    ),
                    (r, fake),
                    order=1,
                    modes=("rev",),
                    eps=1e-6,
                )
            check_grads(
                lambda f, kind=kind: gan.generator_adversarial_loss([(f, [])], kind),
                (fake,),
                order=1,
                modes=("rev",),
                eps=1e-6,
            )
        a = [jnp.asarray(rng.normal(size=s)) for s in [(2, 4, 4, 3), (2, 2, 2, 5)]]
        d = [x + jnp.asarray(away_from_zero(x.shape)) for x in a]
        logits = jnp.zeros((2, 1, 1))
        check_grads(
            lambda *fs: gan.feature_matching_loss([(logits, a)], [(logits, list(fs))]),
            tuple(d),
            order=1,
            modes=("rev",),
            eps=1e-6,
        )
        check_grads(lambda *fs: gan.perceptual_loss(list(fs), a), tuple(d), 1, ("rev",), eps=1e-6)
        check_grads(lambda *fs: gan.style_loss(list(fs), a), tuple(d), 1, ("rev",), eps=1e-6)
        target = jnp.asarray(rng.uniform(size=(2, 4, 4, 3)))
        predicted = target + jnp.asarray(away_from_zero((2, 4, 4, 3)))
        mask = jnp.asarray((rng.uniform(size=(2, 4, 4)) > 0.5).astype(np.float64))
        check_grads(
            lambda p: gan.masked_l1_loss(p, target, mask), (predicted,), 1, ("rev",), eps=1e-6
        )


def test_losses_jit_and_vmap():
    rng = np.random.default_rng(5)
    logits = jnp.asarray(rng.normal(size=(3, 2, 2)), jnp.float32)
    feats = [jnp.asarray(rng.normal(size=(3, 2, 2, 4)), jnp.float32)]
    out = [(logits, feats)]
    jitted = jax.jit(lambda o: gan.feature_matching_loss(o, o) + gan.discriminator_loss(o, o))
    np.testing.assert_allclose(
        np.asarray(jitted(out)), np.asarray(gan.discriminator_loss(out, out)), rtol=1e-6
    )
    per_item = jax.vmap(lambda f: gan.style_loss([f[None]], [jnp.zeros_like(f)[None]])[0])(feats[0])
    np.testing.assert_allclose(
        np.asarray(per_item),
        np.asarray(gan.style_loss(feats, [jnp.zeros_like(feats[0])])),
        rtol=1e-6,
    )
