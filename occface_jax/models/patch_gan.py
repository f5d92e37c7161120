"""The discriminators of both de-occlusion GANs (§3.2): PatchGAN, single- or multi-scale.

NHWC. One scale (:class:`PatchGAN`): a 4x4 stride-2 conv (``features``) - LeakyReLU 0.2; ``layers
- 1`` more 4x4 stride-2 convs doubling the channels (capped at 8 ``features``) - norm - LeakyReLU;
a 4x4 stride-1 conv (doubling, capped) - norm - LeakyReLU; a 4x4 stride-1 conv to one channel: the
patch logits. Every conv zero-pads ``padding`` on each side (1 as EdgeConnect and pix2pix; 2 as
pix2pixHD) and has a bias unless spectrally normalised (as both references) or followed by an
instance norm (which subtracts it). ``scales`` > 1 is
pix2pixHD's multi-scale discriminator: independent copies, scale s on the input downsampled s times
by 3x3 average pooling stride 2 (padding 1, padding not counted).

The output is one ``(logits (B, h, w), features)`` pair per scale, full resolution first;
``features`` lists every activation after a LeakyReLU (``layers + 1`` of them, (B, h_i, w_i, c_i)),
for the feature-matching loss (the paper's Eq. 3). N_cont's D_1: ``in_channels=2`` (contour, gray),
spectral norm, no norm, one scale. N_syn's D_2: ``in_channels=4`` (RGB, contour), instance norm, no
spectral norm, two scales.
"""

from __future__ import annotations

import jax
import ml_collections
from flax import nnx

from occface_jax.models.gan_layers import NORMS, SpectralConv, instance_norm


def downsample(x: jax.Array) -> jax.Array:
    """3x3 average pooling, stride 2, padding 1 not counted in the mean: (B, H, W, C) ->
    (B, ceil(H / 2), ceil(W / 2), C)."""
    return nnx.avg_pool(
        x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), count_include_pad=False
    )


class PatchGAN(nnx.Module):
    """One scale: ``x (B, H, W, in_channels) -> (logits (B, h, w), features)``."""

    def __init__(
        self,
        *,
        in_channels: int,
        features: int = 64,
        layers: int = 3,
        spectral_norm: bool = True,
        norm: str = "none",
        padding: int = 1,
        rngs: nnx.Rngs,
    ) -> None:
        if norm not in NORMS:
            raise ValueError(f"unknown normalisation {norm!r}; known: {', '.join(NORMS)}")
        if layers < 1:
            raise ValueError(f"a patch discriminator needs at least one layer, got {layers}")
        self.norm = norm
        self.padding = padding
        cap = 8 * features
        widths = [in_channels, features]
        for _ in range(layers):  # layers - 1 strided convs, then the stride-1 one
            widths.append(min(2 * widths[-1], cap))
        widths.append(1)
        self.strides = (2,) * layers + (1, 1)
        self.convs = nnx.List(
            [
                SpectralConv(
                    c_in,
                    c_out,
                    4,
                    strides=stride,
                    padding=padding,
                    spectral_norm=spectral_norm,
                    use_bias=not spectral_norm and not (norm == "instance" and 0 < i < layers + 1),
                    rngs=rngs,
                )
                for i, (c_in, c_out, stride) in enumerate(
                    zip(widths[:-1], widths[1:], self.strides, strict=True)
                )
            ]
        )

    def output_side(self, side: int) -> int:
        """The logits' side for an input side (< 1: too small)."""
        for stride in self.strides:
            side = (side + 2 * self.padding - 4) // stride + 1
            if side < 1:
                return side
        return side

    def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        feats = []
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i == last:
                break
            if i > 0 and self.norm == "instance":
                x = instance_norm(x)
            x = jax.nn.leaky_relu(x, 0.2)
            feats.append(x)
        return x[..., 0], feats


class PatchDiscriminator(nnx.Module):
    """``PatchDiscriminator(...)(x (B, H, W, in_channels)) -> [(logits (B, h, w), features)]`` over
    scales, full resolution first."""

    def __init__(
        self,
        *,
        in_channels: int,
        features: int = 64,
        layers: int = 3,
        scales: int = 1,
        spectral_norm: bool = True,
        norm: str = "none",
        padding: int = 1,
        rngs: nnx.Rngs,
    ) -> None:
        self.in_channels = in_channels
        self.discriminators = nnx.List(
            [
                PatchGAN(
                    in_channels=in_channels,
                    features=features,
                    layers=layers,
                    spectral_norm=spectral_norm,
                    norm=norm,
                    padding=padding,
                    rngs=rngs,
                )
                for _ in range(scales)
            ]
        )

    def __call__(self, x: jax.Array) -> list[tuple[jax.Array, list[jax.Array]]]:
        if x.shape[-1] != self.in_channels:
            raise ValueError(
                f"the discriminator takes {self.in_channels} channels, got {x.shape[-1]}"
            )
        height, width = x.shape[1:3]
        for s, disc in enumerate(self.discriminators):
            h, w = -(-height // 2**s), -(-width // 2**s)  # each pooling: ceil(side / 2)
            if min(disc.output_side(h), disc.output_side(w)) < 1:
                raise ValueError(
                    f"a {height}x{width} input is too small for the patch discriminator's "
                    f"scale {s} ({h}x{w})"
                )
        out = []
        for s, disc in enumerate(self.discriminators):
            if s:
                x = downsample(x)
            out.append(disc(x))
        return out


def build_patch_discriminator(
    section: ml_collections.ConfigDict, rngs: nnx.Rngs
) -> PatchDiscriminator:
    """A discriminator from a config section: ``in_channels``, ``features`` (64), ``layers`` (3),
    ``scales`` (1), ``spectral_norm`` (True), ``norm`` ('none' | 'instance'), ``padding`` (1)."""
    return PatchDiscriminator(
        in_channels=int(section.in_channels),
        features=int(section.get("features", 64)),
        layers=int(section.get("layers", 3)),
        scales=int(section.get("scales", 1)),
        spectral_norm=bool(section.get("spectral_norm", True)),
        norm=str(section.get("norm", "none")),
        padding=int(section.get("padding", 1)),
        rngs=rngs,
    )
