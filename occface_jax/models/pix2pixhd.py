"""N_syn: the face-synthesis network of §3.2, pix2pixHD's global generator (Wang et al. 2018) with
the paper's 4 residual blocks.

NHWC. Inputs: ``image`` (B, H, W, 3) RGB in [0, 1], ``contour`` (B, H, W) the completed contour
C_fina, ``mask`` (B, H, W) {0, 1} with 1 = hole; sides divisible by ``2**downsamplings``. The
network masks the image itself: its five input channels are ``image * (1 - M)``, ``contour`` and
``M``. Output (B, H, W, 3) RGB in [0, 1] (``(tanh + 1) / 2``); :func:`composite` pastes it into
the hole only, keeping the input pixels outside.

Reflection pad 3 + 7x7 conv (``features``) - IN - ReLU; ``downsamplings`` 3x3 stride-2 convs
(zero padding 1) doubling the channels, each - IN - ReLU; ``residual_blocks`` residual blocks
(3x3 - IN - ReLU - 3x3 - IN, reflection padded; skip add); ``downsamplings`` 3x3 stride-2
transposed convs (padding 1, output padding 1) halving the channels, each - IN - ReLU; reflection
pad 3 + 7x7 conv to 3 channels, tanh. IN = instance norm without affine parameters; only the
output convolution has a bias (pix2pixHD's others have one too, but the instance norm after them
subtracts it: a dead parameter whose zero gradient Adam turns into noise); no spectral norm
(pix2pixHD's generator has none).
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


class GlobalGenerator(nnx.Module):
    """``GlobalGenerator(features, downsamplings, residual_blocks)(image, contour, mask) -> RGB``."""

    def __init__(
        self,
        *,
        features: int = 64,
        downsamplings: int = 4,
        residual_blocks: int = 4,
        rngs: nnx.Rngs,
    ) -> None:
        self.downsamplings = downsamplings
        widths = [features * 2**i for i in range(downsamplings + 1)]
        plain = dict(spectral_norm=False, rngs=rngs)
        normed = dict(plain, use_bias=False)  # an instance norm follows: a bias would be dead
        self.stem = ReflectPadConv(5, features, 7, **normed)
        self.down = nnx.List(
            [
                SpectralConv(widths[i], widths[i + 1], 3, strides=2, padding=1, **normed)
                for i in range(downsamplings)
            ]
        )
        self.blocks = nnx.List([ResidualBlock(widths[-1], **plain) for _ in range(residual_blocks)])
        self.up = nnx.List(
            [
                SpectralConv(
                    widths[i + 1],
                    widths[i],
                    3,
                    strides=2,
                    padding=1,
                    output_padding=1,
                    transpose=True,
                    **normed,
                )
                for i in reversed(range(downsamplings))
            ]
        )
        self.head = ReflectPadConv(features, 3, 7, **plain)

    def __call__(self, image: jax.Array, contour: jax.Array, mask: jax.Array) -> jax.Array:
        """image (B, H, W, 3), contour (B, H, W), mask (B, H, W) -> RGB (B, H, W, 3) in [0, 1]."""
        size = 2**self.downsamplings
        if image.shape[1] % size or image.shape[2] % size:
            raise ValueError(
                f"the global generator needs sides divisible by {size}, got {image.shape[1:3]}"
            )
        keep = 1.0 - mask[..., None]
        x = jnp.concatenate([image * keep, contour[..., None], mask[..., None]], axis=-1)
        x = encoder_decoder(x, self.stem, self.down, self.blocks, self.up)
        return (jnp.tanh(self.head(x)) + 1.0) * 0.5


def composite(synthesised: jax.Array, image: jax.Array, mask: jax.Array) -> jax.Array:
    """``image * (1 - M) + synthesised * M``: the input pixels outside the hole, the network's inside.
    synthesised, image (B, H, W, 3); mask (B, H, W), 1 = hole."""
    m = mask[..., None]
    return image * (1.0 - m) + synthesised * m


def build_global_generator(section: ml_collections.ConfigDict, rngs: nnx.Rngs) -> GlobalGenerator:
    """N_syn from a config section: ``features`` (64), ``downsamplings`` (4), ``residual_blocks``
    (4, the paper's)."""
    return GlobalGenerator(
        features=int(section.get("features", 64)),
        downsamplings=int(section.get("downsamplings", 4)),
        residual_blocks=int(section.get("residual_blocks", 4)),
        rngs=rngs,
    )
