"""PatchGAN discriminators: shapes per scale, features, widths, parameter counts by hand, the
multi-scale wiring and its average pooling vs numpy, instance norm, errors, builder, jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from occface_jax.models.gan_layers import SpectralVector
from occface_jax.models.patch_gan import (
    PatchDiscriminator,
    build_patch_discriminator,
    downsample,
)


def rngs(seed: int) -> nnx.Rngs:
    # RBG keys compile far faster than threefry on CPU (the properties tested do not depend on it)
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def abstract(**kwargs) -> PatchDiscriminator:
    """A discriminator of abstract arrays (nothing computed)."""
    return nnx.eval_shape(lambda: PatchDiscriminator(**kwargs, rngs=nnx.Rngs(0)))


def shapes(disc, x):
    """Abstract output: per scale (logits shape, [feature shapes])."""
    out = nnx.eval_shape(lambda d, x: d(x), disc, x)
    return [(logits.shape, [f.shape for f in feats]) for logits, feats in out]


def patch_parameters(
    c_in: int, f: int, layers: int, spectral_norm: bool, norm: str = "none"
) -> int:
    """4x4 conv weights of one scale, widths f, 2f, ... <= 8f, 1, plus biases without spectral norm
    (but none on the convs an instance norm follows: all but the first and the last)."""
    widths = [c_in, f]
    for _ in range(layers):
        widths.append(min(2 * widths[-1], 8 * f))
    widths.append(1)
    weights = sum(16 * a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    if spectral_norm:
        return weights
    biased = widths[1:] if norm == "none" else [widths[1], widths[-1]]
    return weights + sum(biased)


def avg_pool_np(x):
    """3x3 mean, stride 2, zero padding 1 left out of the count."""
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    ones = np.pad(np.ones(x.shape[1:3]), 1)
    oh, ow = (x.shape[1] + 1) // 2, (x.shape[2] + 1) // 2
    total = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    n = np.zeros((oh, ow))
    for i in range(3):
        for j in range(3):
            total += pad[:, i : i + 2 * oh - 1 : 2, j : j + 2 * ow - 1 : 2]
            n += ones[i : i + 2 * oh - 1 : 2, j : j + 2 * ow - 1 : 2]
    return total / n[None, :, :, None]


def test_shapes_and_features_per_scale():
    d1 = abstract(in_channels=2, features=4)  # N_cont's D_1
    assert shapes(d1, jnp.zeros((2, 32, 32, 2))) == [
        ((2, 2, 2), [(2, 16, 16, 4), (2, 8, 8, 8), (2, 4, 4, 16), (2, 3, 3, 32)])
    ]
    d2 = abstract(in_channels=4, features=4, scales=2, spectral_norm=False, norm="instance")
    assert shapes(d2, jnp.zeros((1, 48, 64, 4))) == [
        ((1, 4, 6), [(1, 24, 32, 4), (1, 12, 16, 8), (1, 6, 8, 16), (1, 5, 7, 32)]),
        ((1, 1, 2), [(1, 12, 16, 4), (1, 6, 8, 8), (1, 3, 4, 16), (1, 2, 3, 32)]),
    ]
    # pix2pixHD pads its 4x4 convolutions by 2
    d = abstract(in_channels=1, features=2, layers=2, padding=2)
    assert shapes(d, jnp.zeros((1, 16, 16, 1))) == [
        ((1, 7, 7), [(1, 9, 9, 2), (1, 5, 5, 4), (1, 6, 6, 8)])
    ]


def test_widths_are_capped_at_eight_features():
    d = abstract(in_channels=3, features=2, layers=5)
    widths = [conv.kernel.shape[-1] for conv in d.discriminators[0].convs]
    assert widths == [2, 4, 8, 16, 16, 16, 1]
    assert [conv.strides for conv in d.discriminators[0].convs] == [2, 2, 2, 2, 2, 1, 1]


def test_parameter_counts():
    d1 = abstract(in_channels=2)
    assert count(nnx.state(d1, nnx.Param)) == patch_parameters(2, 64, 3, True) == 2_762_752
    assert len(jax.tree.leaves(nnx.state(d1, SpectralVector))) == 2 * 5
    d2 = abstract(in_channels=4, scales=2, spectral_norm=False, norm="instance")
    assert (
        count(nnx.state(d2, nnx.Param))
        == 2 * patch_parameters(4, 64, 3, False, "instance")
        == 5_529_730
    )
    assert not nnx.state(d2, nnx.BatchStat)


@pytest.mark.parametrize("side", [(8, 8), (7, 6)])
def test_downsample_matches_numpy(side):
    x = np.random.default_rng(0).normal(size=(2, *side, 3))
    got = np.asarray(downsample(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, avg_pool_np(x), rtol=1e-5, atol=1e-6)


def test_scales_are_independent_copies_on_pooled_inputs():
    d = PatchDiscriminator(
        in_channels=3, features=4, layers=2, scales=2, spectral_norm=False, rngs=rngs(3)
    )
    x = np.random.default_rng(1).uniform(size=(2, 32, 32, 3))
    (l0, f0), (l1, f1) = d(jnp.asarray(x, jnp.float32))
    single0, _ = d.discriminators[0](jnp.asarray(x, jnp.float32))
    single1, feats1 = d.discriminators[1](jnp.asarray(avg_pool_np(x), jnp.float32))
    np.testing.assert_allclose(np.asarray(l0), np.asarray(single0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(l1), np.asarray(single1), rtol=1e-4, atol=1e-5)
    assert len(f0) == len(f1) == 3
    np.testing.assert_allclose(np.asarray(f1[-1]), np.asarray(feats1[-1]), rtol=1e-4, atol=1e-5)
    k0, k1 = (np.asarray(s.convs[0].kernel[...]) for s in d.discriminators)
    assert not np.allclose(k0, k1)


def test_instance_norm_before_every_later_activation():
    """With norm 'instance', every feature but the first is LeakyReLU(z), z zero-mean and unit-
    variance per example and channel."""
    d = PatchDiscriminator(
        in_channels=2, features=4, spectral_norm=False, norm="instance", rngs=rngs(4)
    )
    for disc in d.discriminators:  # large kernels: conv variances far above IN's epsilon
        for conv in disc.convs:
            conv.kernel[...] = conv.kernel[...] * 50.0
    x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 2)) * 3.0 + 1.0
    [(_, feats)] = d(x)
    for f in feats[1:]:
        f = np.asarray(f, np.float64)
        z = np.where(f >= 0, f, f / 0.2)
        np.testing.assert_allclose(z.mean(axis=(1, 2)), 0.0, atol=1e-4)
        np.testing.assert_allclose(z.var(axis=(1, 2)), 1.0, atol=2e-3)
    first = np.asarray(feats[0], np.float64)
    assert np.abs(np.where(first >= 0, first, first / 0.2).mean(axis=(1, 2))).max() > 1e-3


def test_errors():
    d = abstract(in_channels=4, features=2, scales=2)
    with pytest.raises(ValueError, match="too small.*scale 1"):
        d(jnp.zeros((1, 32, 32, 4)))  # scale 1 sees 16 x 16: 8, 4, 2, 1, 0
    with pytest.raises(ValueError, match="takes 4 channels, got 3"):
        d(jnp.zeros((1, 64, 64, 3)))
    with pytest.raises(ValueError, match="unknown normalisation 'batch'"):
        PatchDiscriminator(in_channels=1, norm="batch", rngs=rngs(0))


def test_builder_split_merge_and_jit():
    section = ml_collections.ConfigDict(
        {"in_channels": 2, "features": 4, "layers": 2, "scales": 1, "spectral_norm": True}
    )
    d = build_patch_discriminator(section, rngs(6))
    assert len(d.discriminators) == 1 and len(d.discriminators[0].convs) == 4
    assert len(jax.tree.leaves(nnx.state(d, SpectralVector))) == 2 * 4
    graphdef, state = nnx.split(d)
    d = nnx.merge(graphdef, state)
    d.eval()
    x = jax.random.uniform(jax.random.key(1), (2, 16, 16, 2))
    eager = d(x)
    jitted = nnx.jit(lambda m, x: m(x))(d, x)
    np.testing.assert_allclose(
        np.asarray(jitted[0][0]), np.asarray(eager[0][0]), rtol=1e-4, atol=1e-5
    )
    d2 = nnx.eval_shape(
        lambda: build_patch_discriminator(
            ml_collections.ConfigDict(
                {"in_channels": 4, "scales": 2, "spectral_norm": False, "norm": "instance"}
            ),
            nnx.Rngs(0),
        )
    )
    assert len(d2.discriminators) == 2 and not nnx.state(d2, SpectralVector)
