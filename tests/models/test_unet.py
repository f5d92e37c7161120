"""N_mask U-Net: shapes, input checks, and that it can learn a mask."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from occface_jax.models.unet import UNet, predict_mask


def test_shapes_and_size_check():
    net = UNet(features=4, depth=3, norm_groups=2, rngs=nnx.Rngs(0))
    out = net(jnp.zeros((2, 32, 48, 3)))
    assert out.shape == (2, 32, 48)
    prob = predict_mask(net, jnp.ones((1, 16, 16, 3)))
    assert prob.shape == (1, 16, 16) and ((prob >= 0) & (prob <= 1)).all()
    with pytest.raises(ValueError, match="divisible by 8"):
        net(jnp.zeros((1, 20, 20, 3)))


def test_learns_to_segment_bright_squares():
    """A few dozen Adam steps on random images with bright squares reach IoU > 0.8 on new ones."""
    rng = np.random.default_rng(0)

    def batch(n):
        images = rng.uniform(0.0, 0.4, (n, 32, 32, 3)).astype(np.float32)
        masks = np.zeros((n, 32, 32), np.float32)
        for k in range(n):
            y, x = rng.integers(0, 22, 2)
            images[k, y : y + 10, x : x + 10] += 0.5
            masks[k, y : y + 10, x : x + 10] = 1
        return jnp.asarray(images), jnp.asarray(masks)

    net = UNet(features=8, depth=2, norm_groups=4, rngs=nnx.Rngs(1))
    opt = nnx.Optimizer(net, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def step(net, opt, x, y):
        def loss(m):
            logits = m(x)
            return jnp.mean(jax.nn.softplus(logits) - y * logits)

        value, grads = nnx.value_and_grad(loss)(net)
        opt.update(net, grads)
        return value

    for _ in range(60):
        step(net, opt, *batch(8))
    x, y = batch(16)
    pred = np.asarray(net(x)) > 0
    truth = np.asarray(y) > 0.5
    assert (pred & truth).sum() / (pred | truth).sum() > 0.8
