"""Reading records safely: images in, bad records skipped, counted and reported (never a crash).

- :func:`read_image` gives float32 (H, W, 3) RGB in [0, 1] or raises :class:`RecordError`.
- :class:`SkipLog` counts skipped records; with a ``directory`` every process (grain workers included)
  appends to its own ``skips-<pid>.jsonl`` there, so the main process can report all of them at the end.
- :func:`skipping` wraps a per-record function: bad records become ``None`` (drop them with
  ``MapDataset.filter``) and are logged.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from occface_jax.data.errors import RecordError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
# What a bad record can raise while being read: all become a skip, anything else is a bug and propagates.
RECORD_ERRORS = (RecordError, OSError, ValueError, UnidentifiedImageError, EOFError, KeyError)

T = TypeVar("T")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file as float32 (H, W, 3) RGB in [0, 1]; gray and RGBA are converted.

    Raises :class:`RecordError` when the file is missing, truncated or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: no such image file")
    try:
        with Image.open(path) as img:
            img.load()
            rgb = np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise RecordError(f"{path}: unreadable image ({err}); remove or replace the file") from err
    return rgb.astype(np.float32) / 255.0


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (H, W, C) resized to ``size`` (height, width): area filter down, linear up."""
    h, w = image.shape[:2]
    interp = cv2.INTER_AREA if size[0] < h else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(image), (size[1], size[0]), interpolation=interp)
    return out.reshape(size + image.shape[2:])


def scale_points(
    points: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]
) -> np.ndarray:
    """Pixel points (N, 2) (x, y; centres at +0.5) of an image of ``from_size`` (H, W) resized to
    ``to_size``: scaling is exact in this convention, the image corners map onto each other."""
    factor = np.array([to_size[1] / from_size[1], to_size[0] / from_size[0]])
    return np.asarray(points, np.float64) * factor


class SkipLog:
    """Counts of skipped records by reason; shared across processes when given a ``directory``."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = None if directory is None else Path(directory)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._local: list[dict[str, str]] = []

    def record(self, key: str, reason: str) -> None:
        """Note that record ``key`` was skipped because of ``reason`` (one line)."""
        entry = {"key": str(key), "reason": reason.splitlines()[0] if reason else "unknown"}
        if self.directory is None:
            self._local.append(entry)
            return
        with open(self.directory / f"skips-{os.getpid()}.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def entries(self) -> list[dict[str, str]]:
        """Every skip recorded so far, by any process sharing the directory."""
        if self.directory is None:
            return list(self._local)
        out = []
        for path in sorted(self.directory.glob("skips-*.jsonl")):
            out.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
        return out

    def __len__(self) -> int:
        return len(self.entries())

    def summary(self) -> str:
        """A short report: the total and the most common reasons (by exception type/first words)."""
        entries = self.entries()
        if not entries:
            return "no records skipped"
        kinds = collections.Counter(e["reason"].split(":")[-1].strip()[:60] for e in entries)
        lines = [f"{len(entries)} record(s) skipped:"]
        lines += [f"  {n} x {reason}" for reason, n in kinds.most_common(5)]
        lines.append(f"  first: {entries[0]['key']} ({entries[0]['reason']})")
        return "\n".join(lines)


def skipping(
    fn: Callable[[Any], T], log: SkipLog, key: Callable[[Any], str] = str
) -> Callable[[Any], T | None]:
    """``fn`` that returns None (and logs) instead of raising on a bad record (``RECORD_ERRORS``)."""

    def wrapped(item: Any) -> T | None:
        try:
            return fn(item)
        except RECORD_ERRORS as err:
            log.record(key(item), f"{type(err).__name__}: {err}")
            return None

    return wrapped
