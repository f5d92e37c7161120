"""N_syn (pix2pixHD's global generator): parameter count by hand, shapes and range, masking,
composite, eval_shape / jitted init / split / merge / jit, builder."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from occface_jax.models.pix2pixhd import GlobalGenerator, build_global_generator, composite


def count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def global_generator_parameters(f: int, downsamplings: int, blocks: int) -> int:
    """Weights of every conv and the output conv's bias, from the architecture (every other conv
    is followed by a non-affine instance norm, so has no bias; the norms have no parameters)."""
    widths = [f * 2**i for i in range(downsamplings + 1)]
    n = 7 * 7 * 5 * f  # stem 7x7, 5 -> f
    n += sum(9 * a * b for a, b in zip(widths[:-1], widths[1:], strict=True))  # 3x3 stride 2
    n += blocks * 2 * 9 * widths[-1] ** 2  # two 3x3 per block
    n += sum(9 * b * a for a, b in zip(widths[:-1], widths[1:], strict=True))  # transposed
    n += 7 * 7 * f * 3 + 3  # head 7x7, f -> 3
    return n


def build() -> GlobalGenerator:
    # RBG keys compile far faster than threefry on CPU (the properties tested do not depend on it)
    return GlobalGenerator(
        features=4, downsamplings=2, residual_blocks=2, rngs=nnx.Rngs(jax.random.key(0, impl="rbg"))
    )


@pytest.fixture(scope="module")
def parts():
    """A small generator as the training loop makes one: abstract shapes, a jitted init."""
    graphdef, abstract = nnx.split(nnx.eval_shape(build))
    state = jax.jit(lambda: nnx.split(build())[1])()
    return graphdef, abstract, state


@pytest.fixture
def net(parts) -> GlobalGenerator:
    graphdef, _, state = parts
    return nnx.merge(graphdef, state)


@nnx.jit
def forward(net, image, contour, mask):
    return net(image, contour, mask)


def inputs(key, batch=2, side=16):
    k1, k2 = jax.random.split(key)
    image = jax.random.uniform(k1, (batch, side, side, 3))
    contour = (jax.random.uniform(k2, (batch, side, side)) > 0.8).astype(jnp.float32)
    mask = jnp.zeros((batch, side, side)).at[:, 3:9, 6:13].set(1.0)
    return image, contour, mask


def test_parameter_count():
    full = nnx.eval_shape(lambda: GlobalGenerator(rngs=nnx.Rngs(0)))
    assert count(nnx.state(full, nnx.Param)) == global_generator_parameters(64, 4, 4) == 88_056_323
    assert not nnx.state(full, nnx.BatchStat)  # no spectral norm in pix2pixHD's generator
    small = nnx.eval_shape(build)
    assert count(nnx.state(small, nnx.Param)) == global_generator_parameters(4, 2, 2)


def test_shapes_range_and_side_check(net):
    image, contour, mask = jnp.zeros((3, 8, 20, 3)), jnp.zeros((3, 8, 20)), jnp.zeros((3, 8, 20))
    assert nnx.eval_shape(lambda m: m(image, contour, mask), net).shape == (3, 8, 20, 3)
    out = np.asarray(forward(net, *inputs(jax.random.key(0))))
    assert out.shape == (2, 16, 16, 3) and out.min() >= 0.0 and out.max() <= 1.0
    with pytest.raises(ValueError, match="divisible by 4"):
        net(jnp.zeros((1, 16, 18, 3)), jnp.zeros((1, 16, 18)), jnp.zeros((1, 16, 18)))


def test_hole_content_never_reaches_the_network(net):
    image, contour, mask = inputs(jax.random.key(1))
    base = np.asarray(forward(net, image, contour, mask))
    hole = (mask > 0)[..., None]
    noise = jax.random.uniform(jax.random.key(2), image.shape)
    np.testing.assert_array_equal(
        np.asarray(forward(net, jnp.where(hole, noise, image), contour, mask)), base
    )
    # a pixel outside the hole changes the output, in the hole too
    diff = np.abs(np.asarray(forward(net, image.at[:, 12, 2].add(0.5), contour, mask)) - base)
    assert diff.max() > 1e-5 and diff[np.broadcast_to(np.asarray(hole), diff.shape)].max() > 0
    # the contour (C_fina) is not masked: it guides the synthesis inside the hole
    changed = forward(net, image, contour.at[:, 5, 8].set(1.0 - contour[:, 5, 8]), mask)
    assert np.abs(np.asarray(changed) - base).max() > 1e-5


def test_composite_keeps_outside_pixels_exactly():
    rng = np.random.default_rng(3)
    image = rng.uniform(size=(2, 8, 8, 3)).astype(np.float32)
    synthesised = rng.uniform(size=(2, 8, 8, 3)).astype(np.float32)
    mask = (rng.uniform(size=(2, 8, 8)) > 0.5).astype(np.float32)
    out = np.asarray(composite(jnp.asarray(synthesised), jnp.asarray(image), jnp.asarray(mask)))
    hole = np.broadcast_to(mask[..., None] > 0, out.shape)
    np.testing.assert_array_equal(out[~hole], image[~hole])
    np.testing.assert_array_equal(out[hole], synthesised[hole])


def test_eval_shape_jit_init_split_merge(parts, net):
    graphdef, abstract, state = parts
    assert jax.tree.map(lambda a: (a.shape, a.dtype), abstract) == jax.tree.map(
        lambda a: (a.shape, a.dtype), state
    )
    image, contour, mask = inputs(jax.random.key(4))
    again = nnx.merge(*nnx.split(net))
    np.testing.assert_array_equal(
        np.asarray(forward(again, image, contour, mask)),
        np.asarray(forward(net, image, contour, mask)),
    )


def test_builder_reads_the_section():
    section = ml_collections.ConfigDict({"features": 4, "downsamplings": 3, "residual_blocks": 1})
    net = nnx.eval_shape(lambda: build_global_generator(section, nnx.Rngs(0)))
    assert len(net.down) == len(net.up) == 3 and len(net.blocks) == 1
    assert count(nnx.state(net, nnx.Param)) == global_generator_parameters(4, 3, 1)
    default = nnx.eval_shape(
        lambda: build_global_generator(ml_collections.ConfigDict(), nnx.Rngs(0))
    )
    assert count(nnx.state(default, nnx.Param)) == 88_056_323
