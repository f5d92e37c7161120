"""GAN layers: convolutions vs a numpy reference, transposed = adjoint, spectral norm (SVD, modes,
gradient vs finite differences), reflection padding, instance norm, dilated residual block."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from occface_jax.models.gan_layers import (
    InstanceNorm,
    ResidualBlock,
    SpectralConv,
    SpectralVector,
    instance_norm,
    reflect_pad,
)


def rngs(seed: int) -> nnx.Rngs:
    # RBG keys compile far faster than threefry on CPU (the properties tested do not depend on it)
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def conv_np(x, kernel, stride=1, pad=0, dilation=1):
    """Direct cross-correlation in float64, NHWC / HWIO, zero padding (loops over kernel taps only)."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kernel = np.asarray(kernel, np.float64)
    kh, kw = kernel.shape[:2]
    oh = (x.shape[1] - dilation * (kh - 1) - 1) // stride + 1
    ow = (x.shape[2] - dilation * (kw - 1) - 1) // stride + 1
    y = np.zeros((x.shape[0], oh, ow, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = x[
                :,
                i * dilation : i * dilation + stride * (oh - 1) + 1 : stride,
                j * dilation : j * dilation + stride * (ow - 1) + 1 : stride,
            ]
            y += patch @ kernel[i, j]
    return y


def test_plain_conv_matches_numpy():
    rng = np.random.default_rng(0)
    conv = SpectralConv(
        3, 5, 3, strides=2, padding=1, dilation=2, spectral_norm=False, rngs=rngs(0)
    )
    conv.bias[...] = jnp.asarray(rng.normal(size=5), jnp.float32)
    x = rng.normal(size=(2, 11, 9, 3)).astype(np.float32)
    want = conv_np(x, conv.kernel[...], 2, 1, 2) + np.asarray(conv.bias[...])
    got = np.asarray(conv(jnp.asarray(x)))
    assert got.shape == want.shape == (2, 5, 4, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert conv.u is None and not nnx.state(conv, nnx.BatchStat)


def test_spectral_conv_divides_by_stored_sigma():
    """Evaluation mode: output = numpy conv with kernel / (v . W u) from the stored vectors."""
    rng = np.random.default_rng(1)
    conv = SpectralConv(4, 6, 3, padding=1, rngs=rngs(1))
    conv.eval()
    k = np.asarray(conv.kernel[...], np.float64)
    u, v = np.asarray(conv.u[...], np.float64), np.asarray(conv.v[...], np.float64)
    sigma = v @ k.reshape(-1, 6) @ u
    x = rng.normal(size=(1, 6, 6, 4))
    got = np.asarray(conv(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, conv_np(x, k / sigma, 1, 1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kernel_size, padding, output_padding, dilation",
    [(4, 1, 0, 1), (3, 1, 1, 1), (3, 2, 1, 2)],
)
def test_transposed_conv_is_adjoint_of_strided_conv(kernel_size, padding, output_padding, dilation):
    """<T(y), x> = <y, C(x)>, C the stride-2 conv with the kernel's channel axes swapped (PyTorch's
    ConvTranspose2d); output side (H - 1) * s - 2p + d (k - 1) + op + 1."""
    rng = np.random.default_rng(2)
    t = SpectralConv(
        5,
        3,
        kernel_size,
        strides=2,
        padding=padding,
        dilation=dilation,
        transpose=True,
        output_padding=output_padding,
        spectral_norm=False,
        use_bias=False,
        rngs=rngs(2),
    )
    y = rng.normal(size=(2, 4, 5, 5))
    out = np.asarray(t(jnp.asarray(y, jnp.float32)), np.float64)
    side = lambda n: (n - 1) * 2 - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1  # noqa: E731
    assert out.shape == (2, side(4), side(5), 3)
    x = rng.normal(size=out.shape)
    cx = conv_np(x, np.asarray(t.kernel[...]).transpose(0, 1, 3, 2), 2, padding, dilation)
    assert cx.shape == y.shape
    np.testing.assert_allclose(np.sum(out * x), np.sum(y * cx), rtol=1e-5)


def test_power_iterations_reach_unit_singular_value():
    conv = SpectralConv(4, 6, 3, rngs=rngs(3))
    raw = np.linalg.svd(np.asarray(conv.kernel[...]).reshape(-1, 6), compute_uv=False)
    x = jnp.ones((1, 5, 5, 4))
    for _ in range(100):  # one power-iteration step per training-mode call
        conv(x)
    np.testing.assert_allclose(float(conv.sigma()), raw[0], rtol=1e-4)
    normalised = np.linalg.svd(np.asarray(conv.weight()).reshape(-1, 6), compute_uv=False)
    np.testing.assert_allclose(normalised[0], 1.0, rtol=1e-4)
    # a transposed conv reshapes its kernel the same way (in * k * k, out)
    t = SpectralConv(6, 4, 4, strides=2, padding=1, transpose=True, rngs=rngs(4))
    for _ in range(100):
        t.update_vectors()
    assert np.linalg.svd(np.asarray(t.weight()).reshape(-1, 4), compute_uv=False)[0] == (
        pytest.approx(1.0, rel=1e-4)
    )


def test_eval_freezes_vectors_and_train_updates_them():
    block = ResidualBlock(4, dilation=2, spectral_norm=True, rngs=rngs(5))
    vectors = nnx.state(block, SpectralVector)
    assert len(jax.tree.leaves(vectors)) == 4  # u and v of both convolutions
    param_names = {path[-1] for path, _ in nnx.to_flat_state(nnx.state(block, nnx.Param))}
    assert param_names == {"kernel"}  # u, v are not trained; no bias before an instance norm
    assert isinstance(block.conv1.conv.u, nnx.BatchStat)
    conv = block.conv1.conv
    conv.u[...] = jax.random.normal(jax.random.key(9), conv.u.shape)  # far from converged
    conv.u[...] = conv.u[...] / jnp.linalg.norm(conv.u[...])
    x = jax.random.normal(jax.random.key(0), (1, 8, 8, 4))
    block.eval()
    assert conv.use_running_average and block.conv2.conv.use_running_average
    before = np.asarray(conv.u[...]).copy()
    out1, out2 = block(x), block(x)
    np.testing.assert_array_equal(np.asarray(conv.u[...]), before)
    np.testing.assert_array_equal(np.asarray(out1), np.asarray(out2))
    block.train()
    assert not conv.use_running_average
    block(x)
    assert np.abs(np.asarray(conv.u[...]) - before).max() > 1e-3


def test_sigma_gradient_matches_finite_difference():
    """Training mode: the gradient w.r.t. the kernel includes d(1/sigma), with u, v (after this
    call's power-iteration step) held constant; checked against a float64 central difference."""
    rng = np.random.default_rng(6)
    conv = SpectralConv(3, 4, 3, padding=1, use_bias=False, rngs=rngs(6))
    x = rng.normal(size=(1, 5, 5, 3))
    r = rng.normal(size=(1, 5, 5, 4))

    def loss(m):
        return jnp.sum(m(jnp.asarray(x, jnp.float32)) * jnp.asarray(r, jnp.float32))

    u_before = np.asarray(conv.u[...]).copy()
    grad = nnx.grad(loss, argnums=nnx.DiffState(0, nnx.Param))(conv)
    u, v = np.asarray(conv.u[...], np.float64), np.asarray(conv.v[...], np.float64)
    assert not np.array_equal(u, u_before)  # the step updated the vectors inside grad

    def loss_np(k):
        sigma = v @ k.reshape(-1, 4) @ u
        return np.sum(conv_np(x, k / sigma, 1, 1) * r)

    k = np.asarray(conv.kernel[...], np.float64)
    direction = rng.normal(size=k.shape)
    eps = 1e-6
    numeric = (loss_np(k + eps * direction) - loss_np(k - eps * direction)) / (2 * eps)
    analytic = float(np.sum(np.asarray(grad["kernel"][...], np.float64) * direction))
    assert analytic == pytest.approx(numeric, rel=1e-3)
    # along the kernel itself kernel / sigma is constant (u, v fixed), so the derivative is zero,
    # where treating sigma as a constant would give loss / |kernel|-ish
    along_kernel = float(np.sum(np.asarray(grad["kernel"][...], np.float64) * k))
    frozen = float(np.sum(conv_np(x, k, 1, 1) * r)) / (v @ k.reshape(-1, 4) @ u)
    assert abs(along_kernel) < 1e-4 * abs(frozen)


def test_reflect_pad_matches_numpy():
    x = np.arange(2 * 4 * 5 * 3, dtype=np.float32).reshape(2, 4, 5, 3)
    got = np.asarray(reflect_pad(jnp.asarray(x), 3))
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)), mode="reflect"))
    row = np.asarray(reflect_pad(jnp.asarray([1.0, 2.0, 3.0]).reshape(1, 1, 3, 1), 2))[0, 2, :, 0]
    np.testing.assert_array_equal(row, [3, 2, 1, 2, 3, 2, 1])  # the edge is not repeated


def test_instance_norm_matches_numpy():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 6, 5, 4)) * rng.uniform(0.5, 3, (3, 1, 1, 4)) + rng.normal(
        size=(3, 1, 1, 4)
    )
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    want = (x - mean) / np.sqrt(var + 1e-5)
    got = np.asarray(instance_norm(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    norm = InstanceNorm(4, affine=True)
    scale, shift = rng.normal(size=4), rng.normal(size=4)
    norm.scale[...] = jnp.asarray(scale, jnp.float32)
    norm.shift[...] = jnp.asarray(shift, jnp.float32)
    got = np.asarray(norm(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, want * scale + shift, rtol=1e-4, atol=1e-5)
    assert not nnx.state(InstanceNorm(4), nnx.Param)  # non-affine: no parameters


@pytest.mark.parametrize("dilation", [1, 2])
def test_residual_block_receptive_field(dilation):
    """One output pixel depends on exactly the (2 (dilation + 1) + 1)^2 square around it: taps
    {-d, 0, d} then {-1, 0, 1} (norm 'none', as instance norm couples every pixel)."""
    block = ResidualBlock(6, dilation=dilation, norm="none", rngs=rngs(8))
    block.conv1.conv.bias[...] = jnp.full((6,), 0.05)
    x = jax.random.normal(jax.random.key(1), (1, 17, 17, 6))
    jac = jax.grad(lambda x: jnp.sum(block(x)[0, 8, 8]))(x)
    support = np.abs(np.asarray(jac)).sum(axis=(0, 3)) > 0
    radius = dilation + 1
    want = np.zeros((17, 17), bool)
    want[8 - radius : 9 + radius, 8 - radius : 9 + radius] = True
    np.testing.assert_array_equal(support, want)
