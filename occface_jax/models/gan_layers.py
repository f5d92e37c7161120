"""Layers shared by the de-occlusion GANs (§3.2): spectrally normalised convolutions, reflection
padding, instance normalisation and the residual block of EdgeConnect / pix2pixHD.

NHWC throughout. :class:`SpectralConv` is the one convolution of both GANs: a plain (or transposed)
convolution whose kernel, when ``spectral_norm``, is divided by its largest singular value sigma
(Miyato et al. 2018), estimated by power iteration with persistent vectors ``u`` and ``v`` kept in
:class:`SpectralVector` variables (an ``nnx.BatchStat``: saved in checkpoints, updated in place, never
trained). ``model.train()`` / ``model.eval()`` toggle ``use_running_average`` as they do for
``nnx.BatchNorm``: one power-iteration step per call in training mode, none in evaluation mode.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

NORMS = ("instance", "none")
_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


class SpectralVector(nnx.BatchStat):
    """A power-iteration vector of a spectrally normalised kernel (state, not a trained parameter)."""


def _normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x), eps)


@functools.partial(jax.jit, static_argnames="steps")
def power_iteration(matrix: jax.Array, u: jax.Array, steps: int) -> tuple[jax.Array, jax.Array]:
    """``steps`` (>= 1) power-iteration steps on ``matrix`` (n, out) from ``u`` (out,): returns unit
    vectors ``(u (out,), v (n,))`` with ``v . matrix @ u`` -> the largest singular value."""

    def step(_, uv):
        v = _normalize(matrix @ uv[0])
        return _normalize(matrix.T @ v), v

    return jax.lax.fori_loop(0, steps, step, (u, jnp.zeros(matrix.shape[:1], matrix.dtype)))


class SpectralConv(nnx.Module):
    """2-D convolution, spectrally normalised when ``spectral_norm`` (a plain one otherwise).

    Kernel (k, k, in, out), initialised N(0, 0.02) (DCGAN / EdgeConnect / pix2pixHD); bias zeros.
    ``padding``: zero padding on each side (PyTorch's ``padding``). ``transpose=True`` is PyTorch's
    ``ConvTranspose2d`` (a PyTorch weight (in, out, k, k) is this kernel transposed (2, 3, 0, 1)):
    the adjoint of the strided convolution, output side ``(H - 1) * strides - 2 * padding +
    dilation * (k - 1) + output_padding + 1``. Spectral norm: W = kernel reshaped to (k*k*in, out),
    sigma = v . W u with u (out,) and v (k*k*in,) held constant (``stop_gradient``, as PyTorch's
    ``spectral_norm``), so the gradient flows through sigma's dependence on the kernel; ``u`` and ``v``
    start after ``init_iterations`` power-iteration steps, so evaluation mode is usable at once.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        strides: int = 1,
        padding: int = 0,
        dilation: int = 1,
        transpose: bool = False,
        output_padding: int = 0,
        spectral_norm: bool = True,
        use_bias: bool = True,
        init_iterations: int = 15,
        kernel_init: nnx.Initializer = nnx.initializers.normal(0.02),
        use_running_average: bool = False,
        rngs: nnx.Rngs,
    ) -> None:
        self.strides = strides
        self.padding = padding
        self.dilation = dilation
        self.transpose = transpose
        self.output_padding = output_padding
        self.spectral_norm = spectral_norm
        self.use_running_average = use_running_average
        shape = (kernel_size, kernel_size, in_channels, out_channels)
        self.kernel = nnx.Param(kernel_init(rngs.params(), shape, jnp.float32))
        self.bias = nnx.Param(jnp.zeros((out_channels,), jnp.float32)) if use_bias else None
        if spectral_norm:
            start = _normalize(jax.random.normal(rngs.params(), (out_channels,), jnp.float32))
            u, v = power_iteration(self.matrix(), start, max(init_iterations, 1))
            self.u = SpectralVector(u)
            self.v = SpectralVector(v)
        else:
            self.u = None
            self.v = None

    def matrix(self) -> jax.Array:
        """The raw kernel as a matrix (k*k*in, out)."""
        kernel = self.kernel[...]
        return kernel.reshape(-1, kernel.shape[-1])

    def sigma(self) -> jax.Array:
        """The current estimate of the kernel's largest singular value, ``v . W u`` (scalar)."""
        u = jax.lax.stop_gradient(self.u[...])
        v = jax.lax.stop_gradient(self.v[...])
        return v @ (self.matrix() @ u)

    def update_vectors(self) -> None:
        """One power-iteration step on ``u`` and ``v``, in place (no gradient flows through it)."""
        u, v = power_iteration(jax.lax.stop_gradient(self.matrix()), self.u[...], 1)
        self.u[...] = u
        self.v[...] = v

    def weight(self) -> jax.Array:
        """The kernel the convolution applies, (k, k, in, out): ``kernel / sigma`` under spectral
        norm (with the stored ``u``, ``v``; no update), the raw kernel otherwise."""
        kernel = self.kernel[...]
        return kernel / self.sigma() if self.spectral_norm else kernel

    def __call__(self, x: jax.Array) -> jax.Array:
        """``x`` (B, H, W, in) -> (B, H', W', out); in training mode first one power-iteration step."""
        if self.spectral_norm and not self.use_running_average:
            self.update_vectors()
        w = self.weight()
        d = self.dilation
        if self.transpose:
            low = d * (w.shape[0] - 1) - self.padding
            y = jax.lax.conv_general_dilated(
                x,
                w[::-1, ::-1],
                window_strides=(1, 1),
                padding=[(low, low + self.output_padding)] * 2,
                lhs_dilation=(self.strides, self.strides),
                rhs_dilation=(d, d),
                dimension_numbers=_DIMENSIONS,
            )
        else:
            y = jax.lax.conv_general_dilated(
                x,
                w,
                window_strides=(self.strides, self.strides),
                padding=[(self.padding, self.padding)] * 2,
                rhs_dilation=(d, d),
                dimension_numbers=_DIMENSIONS,
            )
        return y + self.bias[...] if self.bias is not None else y


def reflect_pad(x: jax.Array, width: int) -> jax.Array:
    """Reflection padding of H and W by ``width`` (PyTorch's ``ReflectionPad2d``; edge not repeated;
    needs ``width`` < each side)."""
    return jnp.pad(x, ((0, 0), (width, width), (width, width), (0, 0)), mode="reflect")


class ReflectPadConv(nnx.Module):
    """Reflection padding ``dilation * (k - 1) // 2`` then a stride-1 :class:`SpectralConv`
    (odd ``k``): (B, H, W, in) -> (B, H, W, out)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        dilation: int = 1,
        spectral_norm: bool = True,
        use_bias: bool = True,
        rngs: nnx.Rngs,
    ) -> None:
        self.pad = dilation * (kernel_size - 1) // 2
        self.conv = SpectralConv(
            in_channels,
            out_channels,
            kernel_size,
            dilation=dilation,
            spectral_norm=spectral_norm,
            use_bias=use_bias,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(reflect_pad(x, self.pad))


def instance_norm(x: jax.Array, epsilon: float = 1e-5) -> jax.Array:
    """Per example and channel, over H and W: ``(x - mean) / sqrt(var + eps)`` (biased variance, as
    PyTorch's ``InstanceNorm2d``); x (B, H, W, C)."""
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + epsilon)


class InstanceNorm(nnx.Module):
    """:func:`instance_norm`, with a learned per-channel scale (ones) and shift (zeros) if ``affine``."""

    def __init__(self, channels: int, *, affine: bool = False, epsilon: float = 1e-5) -> None:
        self.epsilon = epsilon
        self.scale = nnx.Param(jnp.ones((channels,), jnp.float32)) if affine else None
        self.shift = nnx.Param(jnp.zeros((channels,), jnp.float32)) if affine else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = instance_norm(x, self.epsilon)
        if self.scale is not None:
            y = y * self.scale[...] + self.shift[...]
        return y


def _normalise(kind: str, x: jax.Array) -> jax.Array:
    return instance_norm(x) if kind == "instance" else x


def encoder_decoder(
    x: jax.Array,
    stem: nnx.Module,
    down: Sequence[nnx.Module],
    blocks: Sequence[nnx.Module],
    up: Sequence[nnx.Module],
) -> jax.Array:
    """Both generators' trunk: ``stem``, then each of ``down``, then ``up`` as conv - instance
    norm - ReLU, with the residual ``blocks`` between ``down`` and ``up``."""
    x = jax.nn.relu(instance_norm(stem(x)))
    for conv in down:
        x = jax.nn.relu(instance_norm(conv(x)))
    for block in blocks:
        x = block(x)
    for conv in up:
        x = jax.nn.relu(instance_norm(conv(x)))
    return x


class ResidualBlock(nnx.Module):
    """``x + norm(conv3(relu(norm(conv3_dilated(x)))))``, both convolutions reflection-padded, the
    first with ``dilation`` (2 in EdgeConnect, 1 in pix2pixHD): (B, H, W, C) -> (B, H, W, C).
    ``norm``: 'instance' (non-affine) or 'none'. The convolutions have a bias only with ``use_bias``
    and no norm (an instance norm subtracts it)."""

    def __init__(
        self,
        channels: int,
        *,
        dilation: int = 1,
        spectral_norm: bool = False,
        use_bias: bool = True,
        norm: str = "instance",
        rngs: nnx.Rngs,
    ) -> None:
        if norm not in NORMS:
            raise ValueError(f"unknown normalisation {norm!r}; known: {', '.join(NORMS)}")
        self.norm = norm
        bias = use_bias and norm == "none"
        kwargs = dict(spectral_norm=spectral_norm, use_bias=bias, rngs=rngs)
        self.conv1 = ReflectPadConv(channels, channels, 3, dilation=dilation, **kwargs)
        self.conv2 = ReflectPadConv(channels, channels, 3, **kwargs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(_normalise(self.norm, self.conv1(x)))
        return x + _normalise(self.norm, self.conv2(y))
