"""Tests of occface_jax/data/records.py: image reading, resizing of points, skip logging."""

from __future__ import annotations

import multiprocessing

import cv2
import numpy as np
import pytest

from occface_jax.data.errors import RecordError
from occface_jax.data.records import SkipLog, read_image, resize_image, scale_points, skipping
from occface_jax.errors import OccfaceError


def test_read_image_round_trips_png_and_reports_bad_files(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb.astype(np.float32) / 255)
    gray = rgb[..., 0]
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    assert read_image(tmp_path / "g.png").shape == (9, 7, 3)
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    for name in ("bad.jpg", "missing.png"):
        with pytest.raises(RecordError) as err:
            read_image(tmp_path / name)
        assert isinstance(err.value, OccfaceError) and name in str(err.value)
        assert "\n" not in str(err.value)


def test_scale_points_keeps_features_on_the_same_image_content():
    # A bright pixel at (row 3, col 5) of a 10 x 20 image, upscaled x3 by nearest neighbour: its
    # centre (5.5, 3.5) must map to the centre of the 3 x 3 block, (16.5, 10.5).
    img = np.zeros((10, 20), np.float32)
    img[3, 5] = 1
    big = cv2.resize(img, (60, 30), interpolation=cv2.INTER_NEAREST)
    ys, xs = np.nonzero(big)
    np.testing.assert_allclose(
        scale_points([[5.5, 3.5]], (10, 20), (30, 60))[0], [xs.mean() + 0.5, ys.mean() + 0.5]
    )
    assert resize_image(np.zeros((10, 20, 3), np.float32), (5, 7)).shape == (5, 7, 3)


def _log_from_child(directory):
    SkipLog(directory).record("child-record", "RecordError: broken in a worker")


def test_skip_log_collects_skips_from_other_processes(tmp_path):
    log = SkipLog(tmp_path / "skips")
    log.record("a", "RecordError: x.png: unreadable image")
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_log_from_child, args=(tmp_path / "skips",))
    proc.start()
    proc.join(60)
    keys = sorted(e["key"] for e in log.entries())
    assert keys == ["a", "child-record"] and len(log) == 2
    assert "2 record(s) skipped" in log.summary()


def test_skipping_turns_record_errors_into_none_but_not_bugs():
    log = SkipLog()

    def load(i):
        if i == 1:
            raise RecordError("bad record 1")
        if i == 2:
            raise ZeroDivisionError("a bug")
        return i

    safe = skipping(load, log)
    assert safe(0) == 0 and safe(1) is None and len(log) == 1
    with pytest.raises(ZeroDivisionError):
        safe(2)
