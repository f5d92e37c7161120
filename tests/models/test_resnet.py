"""The regressor's ResNet: the published parameter counts, output shape, zero prediction at
initialisation (the fit's mean-face start), BatchNorm train vs eval, GroupNorm without state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from occface_jax.fit.fitter import initial_coeffs
from occface_jax.models.resnet import ResNet, build_resnet
from occface_jax.morphable import CoeffLayout


def _params(model: nnx.Module) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


@pytest.mark.parametrize(
    "depth, expected",
    # torchvision's resnet18 / 34 / 50 without their 1000-class fc layer (11,689,512 / 21,797,672 /
    # 25,557,032 parameters with it: fc = 512 * 1000 + 1000 or 2048 * 1000 + 1000).
    [(18, 11_689_512 - 513_000), (34, 21_797_672 - 513_000), (50, 25_557_032 - 2_049_000)],
)
def test_parameter_counts_are_torchvisions(depth, expected):
    """Same architecture as the reference ResNets: backbone parameters (BatchNorm scale and
    bias included, running statistics not) equal torchvision's, plus our head."""
    model = nnx.eval_shape(lambda: ResNet(depth=depth, outputs=10, rngs=nnx.Rngs(0)))
    head = model.features * 10 + 10
    assert _params(model) == expected + head


def test_forward_shape_and_zero_at_initialisation():
    """(B, H, W, 3) -> (B, outputs); a fresh network predicts exactly the fit's initial
    coefficients (all zero: mean face, frontal, default distance) for any input."""
    layout = CoeffLayout.deng()
    section = ml_collections.ConfigDict(dict(depth=18, outputs=layout.size, width=8))
    model = build_resnet(section, nnx.Rngs(0))
    images = jax.random.uniform(jax.random.key(1), (2, 64, 48, 3))
    out = model(images)
    assert out.shape == (2, layout.size)
    start = layout.join(initial_coeffs(layout))
    np.testing.assert_array_equal(np.asarray(out), np.broadcast_to(start, out.shape))
    assert float(jnp.abs(model.embed(images)).sum()) > 0  # the features themselves are not zero


def test_batchnorm_uses_batch_statistics_in_training_and_running_ones_in_evaluation():
    """Training mode: a batch's outputs depend on the other batch items and the running averages
    move; evaluation mode: each item alone gives the same output as in a batch, and nothing
    moves."""
    section = ml_collections.ConfigDict(dict(depth=18, outputs=4, width=4, norm="batch"))
    model = build_resnet(section, nnx.Rngs(0))
    model.head.kernel[...] = jax.random.normal(jax.random.key(0), model.head.kernel.shape)
    images = jax.random.uniform(jax.random.key(1), (4, 32, 32, 3))
    before = np.asarray(model.stem_norm.mean[...]).copy()
    train_pair = model(images)[:2]
    train_alone = model(images[:2])
    assert not np.allclose(train_pair, train_alone, atol=1e-4)  # batch statistics differ
    moved = np.asarray(model.stem_norm.mean[...])
    assert np.abs(moved - before).max() > 1e-4  # running averages updated
    model.eval()
    frozen = moved.copy()
    eval_all = np.asarray(model(images))
    eval_alone = np.asarray(model(images[:1]))
    np.testing.assert_allclose(eval_all[:1], eval_alone, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(model.stem_norm.mean[...]), frozen)
    assert not np.allclose(eval_all[:2], train_pair, atol=1e-4)  # eval != train mode


def test_groupnorm_is_per_example_and_has_no_state():
    section = ml_collections.ConfigDict(
        dict(depth=18, outputs=4, width=8, norm="group", norm_groups=4)
    )
    model = build_resnet(section, nnx.Rngs(0))
    assert not jax.tree.leaves(nnx.state(model, nnx.BatchStat))
    model.head.kernel[...] = jax.random.normal(jax.random.key(0), model.head.kernel.shape)
    images = jax.random.uniform(jax.random.key(1), (3, 32, 32, 3))
    np.testing.assert_allclose(model(images)[:1], model(images[:1]), rtol=1e-4, atol=1e-5)


def test_unknown_depth_or_norm_is_refused():
    with pytest.raises(ValueError, match="depth"):
        ResNet(depth=20, outputs=3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="normalisation"):
        ResNet(depth=18, outputs=3, norm="layer", rngs=nnx.Rngs(0))
