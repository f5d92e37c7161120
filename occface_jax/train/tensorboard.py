"""TensorBoard event files without TensorFlow: a small writer (scalars, PNG images) and a reader.

An event file is a sequence of TFRecords: ``uint64 length``, ``uint32 masked CRC-32C of the length``,
``length`` bytes of a serialized ``Event`` protobuf, ``uint32 masked CRC-32C of the data`` (all
little-endian; masked = ``((crc >> 15 | crc << 17) + 0xa282ead8) mod 2**32``). The protobuf fields
used, hand-encoded:

- ``Event``: 1 wall_time (double), 2 step (int64), 3 file_version (string), 5 summary (Summary);
- ``Summary``: 1 value (repeated Value);
- ``Summary.Value``: 1 tag (string), 2 simple_value (float), 4 image (Image);
- ``Summary.Image``: 1 height, 2 width, 3 colorspace (int32), 4 encoded_image_string (PNG bytes).
"""

from __future__ import annotations

import io
import socket
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


def _table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- protobuf wire format: varint (0), 64-bit (1), length-delimited (2), 32-bit (5) ---


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes_field(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _int_field(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(int(value))


def _event(step: int, wall_time: float, summary: bytes = b"", file_version: str = "") -> bytes:
    out = _key(1, 1) + struct.pack("<d", wall_time) + _int_field(2, step)
    if file_version:
        out += _bytes_field(3, file_version.encode())
    if summary:
        out += _bytes_field(5, summary)
    return out


def _scalar_value(tag: str, value: float) -> bytes:
    return _bytes_field(1, tag.encode()) + _key(2, 5) + struct.pack("<f", float(value))


def _image_value(tag: str, image: np.ndarray) -> bytes:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    channels = 1 if image.ndim == 2 else image.shape[2]
    encoded = (
        _int_field(1, image.shape[0])
        + _int_field(2, image.shape[1])
        + _int_field(3, channels)
        + _bytes_field(4, buffer.getvalue())
    )
    return _bytes_field(1, tag.encode()) + _bytes_field(4, encoded)


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return (
        header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))
    )


class EventWriter:
    """Appends events to a new ``events.out.tfevents.<time>.<host>`` file in ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}"
        self.path = directory / name
        self._file = self.path.open("ab")
        self._write(_event(0, time.time(), file_version="brain.Event:2"))

    def _write(self, event: bytes) -> None:
        self._file.write(_record(event))
        self._file.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        summary = b"".join(_bytes_field(1, _scalar_value(k, v)) for k, v in values.items())
        self._write(_event(step, time.time(), summary))

    def images(self, step: int, images: dict[str, np.ndarray]) -> None:
        """``images``: tag -> (H, W) or (H, W, 3) array, uint8 or float in [0, 1]."""
        summary = b"".join(_bytes_field(1, _image_value(k, v)) for k, v in images.items())
        self._write(_event(step, time.time(), summary))

    def close(self) -> None:
        self._file.close()


# --- reading ---


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, Any]]:
    out, pos = [], 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((field, value))
    return out


def records(path: str | Path, strict: bool = True) -> list[bytes]:
    """The records of a TFRecord file, each CRC checked; a torn last record (a write cut short)
    ends the list. A CRC mismatch raises ValueError (``strict``) or ends the list."""
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        if header_crc != masked_crc(header):
            if not strict:
                break
            raise ValueError(f"{path}: bad length CRC at byte {pos}")
        end = pos + 12 + length + 4
        if end > len(data):
            break  # torn write
        body = data[pos + 12 : pos + 12 + length]
        (body_crc,) = struct.unpack("<I", data[end - 4 : end])
        if body_crc != masked_crc(body):
            if not strict:
                break
            raise ValueError(f"{path}: bad data CRC at byte {pos}")
        out.append(body)
        pos = end
    return out


def parse_event(data: bytes) -> dict[str, Any]:
    """``{wall_time, step, file_version?, values: {tag: float | {height, width, channels, png}}}``."""
    event: dict[str, Any] = {"step": 0, "values": {}}
    for field, value in _fields(data):
        if field == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif field == 2:
            event["step"] = value
        elif field == 3:
            event["file_version"] = value.decode()
        elif field == 5:
            for _, raw in _fields(value):
                parts = dict(_fields(raw))
                tag = parts[1].decode()
                if 2 in parts:
                    event["values"][tag] = struct.unpack("<f", parts[2])[0]
                elif 4 in parts:
                    image = dict(_fields(parts[4]))
                    event["values"][tag] = {
                        "height": image[1],
                        "width": image[2],
                        "channels": image[3],
                        "png": image[4],
                    }
    return event


def read_events(directory: str | Path) -> list[dict[str, Any]]:
    """Every event of every event file in ``directory``, files in name (= creation time) order."""
    files = sorted(Path(directory).glob("events.out.tfevents.*"))
    return [parse_event(r) for f in files for r in records(f)]


def truncate_events(directory: str | Path, step: int) -> None:
    """Drop the events after ``step`` from the event files of ``directory`` (a run resumed from
    checkpoint ``step`` writes those steps again); torn or corrupted tails are dropped too."""
    for path in sorted(Path(directory).glob("events.out.tfevents.*")):
        kept = [r for r in records(path, strict=False) if parse_event(r)["step"] <= step]
        data = b"".join(_record(r) for r in kept)
        if data != path.read_bytes():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
