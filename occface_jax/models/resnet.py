"""The coefficient regressor's backbone: ResNet-18 / 34 / 50 (He et al. 2016) from one code path.

NHWC. Input an aligned face crop, RGB in [0, 1] (centred to [-1, 1] inside), any size (global
average pooling at the end; 224 x 224 in the paper, Deng et al.'s R-Net); output one flat vector of
``outputs`` coefficients (a :class:`~occface_jax.morphable.layout.CoeffLayout`'s size). Stem: 7 x 7
convolution stride 2, normalisation, ReLU, 3 x 3 max pool stride 2; four stages of residual blocks
(basic 3 x 3 + 3 x 3 for 18 / 34, bottleneck 1 x 1 - 3 x 3 - 1 x 1 with 4x expansion for 50),
channels ``width * 2**stage``, the first block of stages 2-4 striding 2 (projection shortcut
1 x 1 convolution + normalisation where the shape changes). The last layer (a dense head on the
pooled features) starts at zero weights and bias, so a fresh network predicts the all-zero
coefficients: the mean face, frontal, at Deng et al.'s default distance, light zero (the renderer
adds the ambient term) — the fit's own starting point (``fit.fitter.initial_coeffs``).

Normalisation (``norm``): ``'batch'`` (BatchNorm: batch statistics in training mode, running
averages in evaluation mode; under ``jax.jit`` over a ``('data',)`` mesh with the batch split over
the devices, the batch mean and variance are reductions over the global batch axis, so XLA
computes them across all devices: synchronised BatchNorm without an ``axis_name``) or ``'group'``
(GroupNorm, ``norm_groups`` groups: no batch statistics, the same at training and inference).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

#: depth -> (blocks per stage, bottleneck blocks)
DEPTHS: dict[int, tuple[tuple[int, int, int, int], bool]] = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
}
NORMS = ("batch", "group")


def _norm(kind: str, channels: int, groups: int, momentum: float, rngs: nnx.Rngs) -> nnx.Module:
    if kind == "batch":
        return nnx.BatchNorm(channels, momentum=momentum, rngs=rngs)
    if kind == "group":
        return nnx.GroupNorm(channels, num_groups=math.gcd(groups, channels), rngs=rngs)
    raise ValueError(f"unknown normalisation {kind!r}; known: {', '.join(NORMS)}")


def _conv(c_in: int, c_out: int, size: int, stride: int, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(
        c_in,
        c_out,
        (size, size),
        strides=(stride, stride),
        padding=[(size // 2, size // 2)] * 2,
        use_bias=False,
        kernel_init=nnx.initializers.he_normal(),
        rngs=rngs,
    )


class Block(nnx.Module):
    """One residual block: basic (two 3 x 3) or bottleneck (1 x 1, 3 x 3 strided, 1 x 1 to
    ``4 * width``), with a projection shortcut when the stride or the channels change."""

    def __init__(
        self,
        c_in: int,
        width: int,
        stride: int,
        bottleneck: bool,
        norm: tuple[str, int, float],
        rngs: nnx.Rngs,
    ) -> None:
        kind, groups, momentum = norm
        self.c_out = 4 * width if bottleneck else width
        if bottleneck:
            shapes = [(c_in, width, 1, 1), (width, width, 3, stride), (width, self.c_out, 1, 1)]
        else:
            shapes = [(c_in, width, 3, stride), (width, width, 3, 1)]
        self.convs = nnx.List([_conv(a, b, k, s, rngs) for a, b, k, s in shapes])
        self.norms = nnx.List([_norm(kind, b, groups, momentum, rngs) for _, b, _, _ in shapes])
        project = stride != 1 or c_in != self.c_out
        self.shortcut = nnx.data(_conv(c_in, self.c_out, 1, stride, rngs) if project else None)
        self.shortcut_norm = nnx.data(
            _norm(kind, self.c_out, groups, momentum, rngs) if project else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        y = x
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            y = norm(conv(y))
            if i < last:
                y = jax.nn.relu(y)
        skip = x if self.shortcut is None else self.shortcut_norm(self.shortcut(x))
        return jax.nn.relu(y + skip)


class ResNet(nnx.Module):
    """``ResNet(depth, outputs)(images (B, H, W, 3) in [0, 1]) -> (B, outputs)``."""

    def __init__(
        self,
        *,
        depth: int = 50,
        outputs: int,
        width: int = 64,
        norm: str = "batch",
        norm_groups: int = 32,
        momentum: float = 0.9,
        rngs: nnx.Rngs,
    ) -> None:
        if depth not in DEPTHS:
            raise ValueError(f"ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
        if norm not in NORMS:
            raise ValueError(f"unknown normalisation {norm!r}; known: {', '.join(NORMS)}")
        blocks, bottleneck = DEPTHS[depth]
        spec = (norm, int(norm_groups), float(momentum))
        self.stem = _conv(3, width, 7, 2, rngs)
        self.stem_norm = _norm(norm, width, norm_groups, momentum, rngs)
        layers = []
        c_in = width
        for stage, count in enumerate(blocks):
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                block = Block(c_in, width * 2**stage, stride, bottleneck, spec, rngs)
                layers.append(block)
                c_in = block.c_out
        self.blocks = nnx.List(layers)
        self.features = c_in
        self.head = nnx.Linear(
            c_in,
            outputs,
            kernel_init=nnx.initializers.zeros_init(),
            bias_init=nnx.initializers.zeros_init(),
            rngs=rngs,
        )

    def embed(self, images: jax.Array) -> jax.Array:
        """The pooled features (B, ``features``) before the head."""
        x = jax.nn.relu(self.stem_norm(self.stem(images * 2.0 - 1.0)))
        x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for block in self.blocks:
            x = block(x)
        return jnp.mean(x, axis=(1, 2))

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.head(self.embed(images))


def build_resnet(section: ml_collections.ConfigDict, rngs: nnx.Rngs) -> ResNet:
    """A :class:`ResNet` from a config section: ``depth`` (18 | 34 | 50), ``outputs`` (the
    coefficient layout's size), ``width`` (64), ``norm`` ('batch' | 'group'), ``norm_groups``
    (32), ``momentum`` (0.9, BatchNorm running averages)."""
    return ResNet(
        depth=int(section.depth),
        outputs=int(section.outputs),
        width=int(section.get("width", 64)),
        norm=str(section.get("norm", "batch")),
        norm_groups=int(section.get("norm_groups", 32)),
        momentum=float(section.get("momentum", 0.9)),
        rngs=rngs,
    )
