"""dlib serialization reader: primitives against an independent encoder, the real file's structure,
and clear errors on corrupt or foreign files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from occface_jax.errors import WeightsFileError
from occface_jax.models.dlib_weights import _Reader, parse_dlib_net, read_dlib_net


def _encode_int(value: int) -> bytes:
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def _encode_float(value: float) -> bytes:
    # dlib: mantissa * 2**exponent with a 53-bit mantissa (any exact pair decodes the same).
    mantissa, exponent = math.frexp(value)
    return _encode_int(int(mantissa * 2**53)) + _encode_int(exponent - 53)


def test_integer_and_float_primitives_decode_an_independent_encoding():
    rng = np.random.default_rng(0)
    ints = [0, 1, -1, 150, 4736, -300, 2**40 + 7, *rng.integers(-(2**31), 2**31, 20).tolist()]
    floats = [0.0, 1.0, -0.04, 122.782, 1e-30, *rng.normal(size=20).tolist()]
    data = b"".join(map(_encode_int, ints)) + b"".join(map(_encode_float, floats))
    reader = _Reader(data, "test")
    assert [reader.int() for _ in ints] == ints
    assert [reader.float() for _ in floats] == floats
    assert reader.pos == len(data)


def test_face_recognition_file_has_consistent_structure(recognition_dat):
    net = read_dlib_net(recognition_dat)
    convs = [layer for layer in net.layers if layer.kind == "con"]
    assert len(convs) == 29 and net.input.fields["nr"] == 150
    # Each conv's input channels equal the channels flowing into it (residual stages keep width).
    channels = 3
    for con in convs:
        out_c, in_c, rows, cols = con.fields["filters"].shape
        assert in_c in (channels, out_c) and rows == con.fields["nr"] and cols == con.fields["nc"]
        assert con.fields["biases"].shape == (out_c,)
        channels = out_c
    fc = net.computational()[-1]
    assert fc.kind == "fc" and fc.fields["weights"].shape == (channels, 128)
    assert all(np.isfinite(con.fields["filters"]).all() for con in convs)
    assert net.loss.fields["dist_thresh"] == pytest.approx(0.6)


def test_truncated_file_raises_clear_error(recognition_dat, tmp_path):
    data = recognition_dat.read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFileError, match="file ends early"):
        read_dlib_net(cut)
    with pytest.raises(WeightsFileError, match="unexpected bytes"):
        parse_dlib_net(data + b"\x00\x01", "padded")


def test_compressed_download_gets_a_hint(tmp_path):
    path = tmp_path / "model.dat"
    path.write_bytes(b"BZh91AY&SY" + bytes(100))
    with pytest.raises(WeightsFileError, match="bunzip2"):
        read_dlib_net(path)


def test_foreign_dat_file_is_rejected(dlib_models):
    # The 5-point shape predictor is also a dlib .dat, but not a network.
    with pytest.raises(WeightsFileError):
        read_dlib_net(dlib_models("landmarks5"))
