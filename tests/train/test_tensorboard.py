"""The TensorFlow-free event-file writer: CRC-32C, records read back with their CRCs checked, scalar
and PNG image values, truncation on resume."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from occface_jax.train import tensorboard as tb


def test_crc32c_of_the_standard_check_string():
    assert tb.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert tb.crc32c(b"") == 0


def test_scalars_and_images_read_back(tmp_path):
    writer = tb.EventWriter(tmp_path)
    writer.scalars(3, {"loss": 0.25, "lr/unet": 1e-3})
    picture = np.linspace(0, 1, 2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3)
    writer.images(4, {"images/mask": picture})
    writer.close()
    assert writer.path.name.startswith("events.out.tfevents.")
    events = tb.read_events(tmp_path)
    assert events[0]["file_version"] == "brain.Event:2"
    assert events[1]["step"] == 3
    assert events[1]["values"] == {"loss": 0.25, "lr/unet": pytest.approx(1e-3)}
    image = events[2]["values"]["images/mask"]
    assert (events[2]["step"], image["height"], image["width"], image["channels"]) == (4, 2, 5, 3)
    decoded = np.asarray(Image.open(io.BytesIO(image["png"])))
    np.testing.assert_array_equal(decoded, (picture * 255 + 0.5).astype(np.uint8))


def test_a_flipped_byte_fails_its_crc(tmp_path):
    writer = tb.EventWriter(tmp_path)
    writer.scalars(1, {"loss": 1.0})
    writer.close()
    data = bytearray(writer.path.read_bytes())
    first = 12 + struct.unpack("<Q", data[:8])[0] + 4
    data[first + 14] ^= 0x01  # inside the second record's payload
    writer.path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bad data CRC"):
        tb.records(writer.path)
    assert len(tb.records(writer.path, strict=False)) == 1


def test_truncate_drops_later_steps_and_a_torn_tail(tmp_path):
    writer = tb.EventWriter(tmp_path)
    for step in range(1, 6):
        writer.scalars(step, {"loss": float(step)})
    writer.close()
    writer.path.write_bytes(writer.path.read_bytes()[:-3])  # killed mid-write
    assert [e["step"] for e in tb.read_events(tmp_path)] == [0, 1, 2, 3, 4]
    tb.truncate_events(tmp_path, 2)
    events = tb.read_events(tmp_path)
    assert [(e["step"], e["values"]) for e in events[1:]] == [
        (1, {"loss": 1.0}),
        (2, {"loss": 2.0}),
    ]
