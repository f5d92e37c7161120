"""N_cont (EdgeConnect's edge generator): parameter count by hand, shapes, masking, modes, and
split / merge / jit / eval_shape with a training step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from occface_jax.models.edge_connect import EdgeGenerator, build_edge_generator
from occface_jax.models.gan_layers import SpectralConv, SpectralVector


def count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def edge_generator_parameters(f: int, blocks: int, spectral_norm: bool) -> int:
    """Weights of every conv and the output conv's bias, from the architecture (every other conv
    is followed by a non-affine instance norm, so has no bias; the norms have no parameters)."""
    n = 7 * 7 * 3 * f  # stem 7x7, 3 -> f
    n += 4 * 4 * f * 2 * f  # 4x4 stride 2, f -> 2f
    n += 4 * 4 * 2 * f * 4 * f  # 4x4 stride 2, 2f -> 4f
    n += blocks * 2 * 3 * 3 * 4 * f * 4 * f
    n += 4 * 4 * 4 * f * 2 * f  # transposed 4x4, 4f -> 2f
    n += 4 * 4 * 2 * f * f  # transposed 4x4, 2f -> f
    n += 7 * 7 * f * 1 + 1  # head 7x7, f -> 1
    return n


def flat(state) -> dict[tuple, np.ndarray]:
    return {path: np.asarray(v[...]) for path, v in nnx.to_flat_state(state)}


def rngs(seed: int) -> nnx.Rngs:
    # RBG keys compile far faster than threefry on CPU (the properties tested do not depend on it)
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def inputs(key, batch=2, side=16):
    k1, k2 = jax.random.split(key)
    gray = jax.random.uniform(k1, (batch, side, side))
    contour = (jax.random.uniform(k2, (batch, side, side)) > 0.8).astype(jnp.float32)
    mask = jnp.zeros((batch, side, side)).at[:, 4:10, 5:12].set(1.0)
    return gray, contour, mask


def build() -> EdgeGenerator:
    return EdgeGenerator(features=4, residual_blocks=1, rngs=rngs(4))


@pytest.fixture(scope="module")
def parts():
    """A small generator as the training loop makes one: abstract shapes, a jitted init, merge."""
    graphdef, abstract = nnx.split(nnx.eval_shape(build))
    state = jax.jit(lambda: nnx.split(build())[1])()
    return graphdef, abstract, state


@pytest.fixture
def net(parts) -> EdgeGenerator:
    graphdef, _, state = parts
    return nnx.merge(graphdef, jax.tree.map(jnp.copy, state))


@nnx.jit
def forward(net, gray, contour, mask):
    return net(gray, contour, mask)


def test_parameter_count():
    full = nnx.eval_shape(lambda: EdgeGenerator(rngs=nnx.Rngs(0)))
    assert count(nnx.state(full, nnx.Param)) == edge_generator_parameters(64, 8, True) == 10_760_449
    # spectral norm on all 1 + 2 + 16 + 2 convolutions but the output one: u (out) and v (k*k*in)
    assert len(jax.tree.leaves(nnx.state(full, SpectralVector))) == 2 * 21
    small = nnx.eval_shape(
        lambda: EdgeGenerator(features=4, residual_blocks=2, spectral_norm=False, rngs=nnx.Rngs(0))
    )
    assert count(nnx.state(small, nnx.Param)) == edge_generator_parameters(4, 2, False)
    assert not nnx.state(small, nnx.BatchStat)


def test_shapes_and_side_check(net):
    gray, contour, mask = (jnp.zeros((3, 12, 20)),) * 3
    assert nnx.eval_shape(lambda m: m(gray, contour, mask), net).shape == (3, 12, 20)
    with pytest.raises(ValueError, match="divisible by 4"):
        net(*inputs(jax.random.key(0), side=18))


def test_hole_content_never_reaches_the_network(net):
    net.eval()
    gray, contour, mask = inputs(jax.random.key(1))
    base = np.asarray(forward(net, gray, contour, mask))
    hole = mask > 0
    noise = jax.random.uniform(jax.random.key(2), gray.shape)
    changed = forward(
        net, jnp.where(hole, noise, gray), jnp.where(hole, 1.0 - contour, contour), mask
    )
    np.testing.assert_array_equal(np.asarray(changed), base)
    # a pixel outside the hole does change the output, in the hole too
    outside = forward(net, gray.at[:, 2, 2].add(0.5), contour, mask)
    diff = np.abs(np.asarray(outside) - base)
    assert diff.max() > 1e-4 and diff[np.asarray(hole)].max() > 0
    outside = forward(net, gray, contour.at[:, 13, 13].set(1.0 - contour[:, 13, 13]), mask)
    assert np.abs(np.asarray(outside) - base).max() > 1e-4


def test_eval_and_train_set_every_spectral_conv(net):
    convs = [m for _, m in nnx.iter_modules(net) if isinstance(m, SpectralConv)]
    assert len(convs) == 1 + 2 + 2 + 2 + 1
    net.eval()
    assert all(c.use_running_average for c in convs)
    net.train()
    assert not any(c.use_running_average for c in convs)


def test_jit_init_split_merge_and_a_training_step(parts, net):
    graphdef, abstract, state = parts
    assert jax.tree.map(lambda a: (a.shape, a.dtype), abstract) == jax.tree.map(
        lambda a: (a.shape, a.dtype), state
    )

    net.train()
    opt = nnx.Optimizer(net, optax.adam(1e-3), wrt=nnx.Param)
    gray, contour, mask = inputs(jax.random.key(5))

    @nnx.jit
    def step(net, opt):
        def loss(m):
            logits = m(gray, contour, mask)
            return jnp.mean(jax.nn.softplus(logits) - contour * logits)

        value, grads = nnx.value_and_grad(loss, argnums=nnx.DiffState(0, nnx.Param))(net)
        opt.update(net, grads)
        return value

    params0 = flat(nnx.state(net, nnx.Param))
    vectors0 = flat(nnx.state(net, SpectralVector))
    assert np.isfinite(float(step(net, opt)))
    params1 = flat(nnx.state(net, nnx.Param))
    kernels = [np.abs(params1[k] - params0[k]).max() for k in params0 if k[-1] == "kernel"]
    assert len(kernels) == 1 + 2 + 2 + 2 + 1 and min(kernels) > 0
    vectors1 = flat(nnx.state(net, SpectralVector))
    updated = [np.abs(vectors1[k] - vectors0[k]).max() for k in vectors0]
    assert (
        len(updated) == 2 * 7 and min(updated) > 0
    )  # the power iteration ran inside the jitted step


def test_builder_reads_the_section():
    section = ml_collections.ConfigDict(
        {"features": 4, "residual_blocks": 3, "spectral_norm": False}
    )
    net = nnx.eval_shape(lambda: build_edge_generator(section, nnx.Rngs(0)))
    assert len(net.blocks) == 3 and not nnx.state(net, SpectralVector)
    assert count(nnx.state(net, nnx.Param)) == edge_generator_parameters(4, 3, False)
    default = nnx.eval_shape(lambda: build_edge_generator(ml_collections.ConfigDict(), nnx.Rngs(0)))
    assert count(nnx.state(default, nnx.Param)) == 10_760_449
