"""N_mask: the U-Net that marks occluder pixels on an aligned face crop (the paper's first network).

NHWC. Input RGB in [0, 1] (centred to [-1, 1] inside), any size divisible by ``2**depth``; output one
logit per pixel (sigmoid > 0.5 = occluder). Encoder: ``depth`` levels of two 3x3 conv - GroupNorm -
ReLU blocks, each followed by a 2x2 max pool, channels ``features * 2**level``; a bottleneck block;
decoder: 2x bilinear upsampling, 3x3 conv, concatenation with the skip, two conv blocks. GroupNorm
rather than BatchNorm keeps the module stateless at inference and the same on any number of devices.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


class ConvBlock(nnx.Module):
    """Two (3x3 conv - GroupNorm - ReLU) layers."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, rngs: nnx.Rngs) -> None:
        groups = math.gcd(groups, out_channels)  # GroupNorm needs groups dividing channels
        self.conv1 = nnx.Conv(in_channels, out_channels, (3, 3), use_bias=False, rngs=rngs)
        self.norm1 = nnx.GroupNorm(out_channels, num_groups=groups, rngs=rngs)
        self.conv2 = nnx.Conv(out_channels, out_channels, (3, 3), use_bias=False, rngs=rngs)
        self.norm2 = nnx.GroupNorm(out_channels, num_groups=groups, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.norm1(self.conv1(x)))
        return jax.nn.relu(self.norm2(self.conv2(x)))


class UNet(nnx.Module):
    """``UNet(features, depth)(images (B, H, W, C) in [0, 1]) -> logits (B, H, W)``."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        features: int = 16,
        depth: int = 4,
        norm_groups: int = 8,
        rngs: nnx.Rngs,
    ) -> None:
        self.depth = depth
        widths = [features * 2**level for level in range(depth + 1)]
        self.down = nnx.List(
            [
                ConvBlock(in_channels if i == 0 else widths[i - 1], widths[i], norm_groups, rngs)
                for i in range(depth)
            ]
        )
        self.bottleneck = ConvBlock(widths[depth - 1], widths[depth], norm_groups, rngs)
        self.up_convs = nnx.List(
            [nnx.Conv(widths[i + 1], widths[i], (3, 3), rngs=rngs) for i in reversed(range(depth))]
        )
        self.up = nnx.List(
            [ConvBlock(2 * widths[i], widths[i], norm_groups, rngs) for i in reversed(range(depth))]
        )
        self.head = nnx.Conv(widths[0], 1, (1, 1), rngs=rngs)

    def __call__(self, images: jax.Array) -> jax.Array:
        size = 2**self.depth
        if images.shape[1] % size or images.shape[2] % size:
            raise ValueError(
                f"U-Net of depth {self.depth} needs sides divisible by {size}, got {images.shape[1:3]}"
            )
        x = images * 2.0 - 1.0
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = nnx.max_pool(x, (2, 2), strides=(2, 2))
        x = self.bottleneck(x)
        for up_conv, block, skip in zip(self.up_convs, self.up, reversed(skips), strict=True):
            b, h, w, c = x.shape
            x = jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear")
            x = jnp.concatenate([jax.nn.relu(up_conv(x)), skip], axis=-1)
            x = block(x)
        return self.head(x)[..., 0]


def predict_mask(model: UNet, images: jax.Array) -> jax.Array:
    """Occluder probabilities (B, H, W) in [0, 1] for crops (B, H, W, 3) in [0, 1]."""
    return jax.nn.sigmoid(model(images))


def build_unet(section, rngs: nnx.Rngs) -> UNet:
    """N_mask from its config section (``configs/mask.py``'s ``model``: features, depth, norm_groups)."""
    return UNet(
        features=int(section.features),
        depth=int(section.depth),
        norm_groups=int(section.norm_groups),
        rngs=rngs,
    )
