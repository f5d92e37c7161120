"""N_cont: the face-contour completion network of §3.2, EdgeConnect's edge generator (Nazeri et al.
2019).

NHWC. Inputs (B, H, W) float32, sides divisible by 4: ``gray`` luma in [0, 1], ``contour`` a binary
{0, 1} edge map, ``mask`` {0, 1} with 1 = hole. The network masks its inputs itself (the paper's
Eq. 1): its three input channels are ``gray * (1 - M)``, ``contour * (1 - M)`` and ``M``, so nothing
under the hole reaches it. Output one logit per pixel (B, H, W); sigmoid = contour probability.

Encoder: reflection pad 3 + 7x7 conv (``features``) - IN - ReLU; two 4x4 stride-2 convs (2f, 4f)
each - IN - ReLU. ``residual_blocks`` residual blocks at 4f (3x3 dilation 2 - IN - ReLU - 3x3 - IN,
reflection padded; skip add). Decoder: two 4x4 stride-2 transposed convs (2f, f) each - IN - ReLU;
reflection pad 3 + 7x7 conv to 1 channel. IN = instance norm without affine parameters. With
``spectral_norm`` every convolution but the output one is spectrally normalised (as EdgeConnect's
released generator). Only the output convolution has a bias: every other one is followed by an
instance norm, which subtracts it (EdgeConnect's encoder and decoder convolutions keep theirs: dead
parameters, 640 of its 10,761,089 at features 64 and 8 blocks, whose zero gradient Adam turns
into noise).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from occface_jax.models.gan_layers import (
    ReflectPadConv,
    ResidualBlock,
    SpectralConv,
    encoder_decoder,
)


class EdgeGenerator(nnx.Module):
    """``EdgeGenerator(features, residual_blocks, spectral_norm)(gray, contour, mask) -> logits``."""

    def __init__(
        self,
        *,
        features: int = 64,
        residual_blocks: int = 8,
        spectral_norm: bool = True,
        rngs: nnx.Rngs,
    ) -> None:
        f, sn = features, spectral_norm
        # No bias before an instance norm: the norm subtracts it (a dead parameter whose zero
        # gradient Adam turns into noise); only the output convolution has one.
        self.stem = ReflectPadConv(3, f, 7, spectral_norm=sn, use_bias=False, rngs=rngs)
        self.down = nnx.List(
            [
                SpectralConv(
                    c, 2 * c, 4, strides=2, padding=1, spectral_norm=sn, use_bias=False, rngs=rngs
                )
                for c in (f, 2 * f)
            ]
        )
        self.blocks = nnx.List(
            [
                ResidualBlock(4 * f, dilation=2, spectral_norm=sn, rngs=rngs)
                for _ in range(residual_blocks)
            ]
        )
        self.up = nnx.List(
            [
                SpectralConv(
                    2 * c,
                    c,
                    4,
                    strides=2,
                    padding=1,
                    transpose=True,
                    spectral_norm=sn,
                    use_bias=False,
                    rngs=rngs,
                )
                for c in (2 * f, f)
            ]
        )
        self.head = ReflectPadConv(f, 1, 7, spectral_norm=False, rngs=rngs)

    def __call__(self, gray: jax.Array, contour: jax.Array, mask: jax.Array) -> jax.Array:
        """gray, contour, mask (B, H, W) -> contour logits (B, H, W)."""
        if gray.shape[1] % 4 or gray.shape[2] % 4:
            raise ValueError(
                f"the edge generator needs sides divisible by 4, got {gray.shape[1:3]}"
            )
        keep = 1.0 - mask
        x = jnp.stack([gray * keep, contour * keep, mask], axis=-1)
        x = encoder_decoder(x, self.stem, self.down, self.blocks, self.up)
        return self.head(x)[..., 0]


def complete_contours(
    generator: EdgeGenerator, gray: jax.Array, contour: jax.Array, mask: jax.Array
) -> jax.Array:
    """C_fina = contour (1 - M) + sigmoid(N_cont) M (the paper's Eq. 4 input): the given contours
    outside the hole, N_cont's contour probabilities inside; (B, H, W) in [0, 1]."""
    probability = jax.nn.sigmoid(generator(gray, contour, mask))
    return contour * (1.0 - mask) + probability * mask


def build_edge_generator(section: ml_collections.ConfigDict, rngs: nnx.Rngs) -> EdgeGenerator:
    """N_cont from a config section: ``features`` (64), ``residual_blocks`` (8), ``spectral_norm``
    (True)."""
    return EdgeGenerator(
        features=int(section.get("features", 64)),
        residual_blocks=int(section.get("residual_blocks", 8)),
        spectral_norm=bool(section.get("spectral_norm", True)),
        rngs=rngs,
    )
