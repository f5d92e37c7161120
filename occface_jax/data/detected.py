"""68 landmarks of the faces in unannotated photos, detected once and cached.

:func:`detect_photo_faces` runs dlib's HOG detector (upsample 1, on a copy of at most
``DETECT_MAX_SIDE`` pixels, as the pipeline's ``hog`` detector) and dlib's 68-point predictor (at
full resolution, in the rescaled box) on every photo it is given, every face of a photo, largest
first. Results go to one JSON file per folder under the cache (:func:`cache_path`:
``<cache>/photo_landmarks/<sha1 of the folder's absolute path>.json``), keyed by the photo's path
relative to the folder and valid while its size and modification time (ns) are unchanged: a second
call reads them back without detecting (dlib is not even imported), a changed photo is detected
again. Photos where no face is found are cached too (an empty list); unreadable photos are not.
The file is written atomically (a temporary file in the same folder, then ``os.replace``), every
``SAVE_EVERY`` new detections and at the end, so an interrupted run keeps what it did; a progress
bar (on a terminal) counts the new photos.

Points are (x, y) pixels of the full photo, centres at integer + 0.5 (``faces.detect``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from occface_jax.data.errors import RecordError
from occface_jax.data.records import read_image
from occface_jax.faces.detect import FaceDetector
from occface_jax.faces.errors import NoFaceFoundError
from occface_jax.paths import cache_dir

CACHE_FORMAT = 1
#: What produced the cached points; a file made by anything else is ignored (detected again).
DETECTOR = "dlib-hog-upsample1+dlib68"
DETECT_MAX_SIDE = 1600  # as app.pipeline.DETECT_MAX_SIDE: HOG runs on a copy at most this large
SAVE_EVERY = 50


@dataclasses.dataclass
class PhotoDetections:
    """What detection found: ``faces`` photo -> list of (68, 2) float64 landmarks (photos with a
    face only), ``faceless`` the photos without a face, ``unreadable`` those that did not decode,
    ``detected`` how many photos were run through the detector now (the rest came from the cache)."""

    faces: dict[Path, list[np.ndarray]]
    faceless: list[Path]
    unreadable: list[Path]
    detected: int


def cache_path(root: str | os.PathLike[str]) -> Path:
    """The cache file of the folder ``root`` (named by a hash of its resolved absolute path)."""
    digest = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "photo_landmarks" / f"{digest}.json"


def photo_key(photo: Path) -> tuple[int, int]:
    """(size in bytes, modification time in ns): a photo's cached entry is valid while these hold."""
    stat = photo.stat()
    return int(stat.st_size), int(stat.st_mtime_ns)


def detect_landmarks(image: np.ndarray, detector: Any) -> list[np.ndarray]:
    """Every face's 68 landmarks (68, 2) float64 in ``image`` (H, W, 3) pixels, largest first; []
    when none. HOG runs on a copy of at most ``DETECT_MAX_SIDE`` pixels, the landmarks at full size."""
    scale = min(1.0, DETECT_MAX_SIDE / max(image.shape[:2]))
    small = image
    if scale < 1.0:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    try:
        faces = detector.detect(small, all_faces=True)
    except NoFaceFoundError:
        return []
    return [np.asarray(detector.landmarks(image, f.box / scale), np.float64) for f in faces]


def _read_cache(path: Path) -> dict[str, Any]:
    """The cached photo entries of ``path`` ({} when absent, of another format or detector, or
    unreadable: a warning, and the photos are detected again)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("format") != CACHE_FORMAT or data.get("detector") != DETECTOR:
            return {}
        return dict(data["photos"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        warnings.warn(f"{path}: unreadable landmark cache ({err}); detecting again", stacklevel=3)
        return {}


def _cached_faces(entry: Any, size: int, mtime: int) -> list[np.ndarray] | None:
    """The faces of a cache entry when it is well formed and its size and time match, else None."""
    if not isinstance(entry, dict) or (entry.get("size"), entry.get("mtime_ns")) != (size, mtime):
        return None
    try:
        return [np.asarray(f, np.float64).reshape(68, 2) for f in entry["faces"]]
    except (KeyError, TypeError, ValueError):
        return None


def _write_cache(path: Path, root: Path, entries: dict[str, Any]) -> None:
    """``entries`` written to ``path`` atomically (temporary file, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": CACHE_FORMAT, "detector": DETECTOR, "root": str(root.resolve())}
    data["photos"] = dict(sorted(entries.items()))
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def detect_photo_faces(
    root: str | os.PathLike[str],
    photos: Sequence[Path],
    cache: str | os.PathLike[str] | None = None,
) -> PhotoDetections:
    """The faces of ``photos`` (files under ``root``), each photo detected once: from the cache
    file ``cache`` (default :func:`cache_path` of ``root``) when its entry matches the photo's
    relative path, size and modification time, else detected now and added to the cache."""
    root = Path(root)
    path = Path(cache) if cache is not None else cache_path(root)
    entries = _read_cache(path)
    known: dict[Path, list[np.ndarray]] = {}
    new: list[tuple[Path, str, tuple[int, int]]] = []
    for photo in photos:
        name = Path(os.path.relpath(photo, root)).as_posix()
        key = photo_key(photo)
        faces = _cached_faces(entries.get(name), *key)
        if faces is None:
            new.append((photo, name, key))
        else:
            known[photo] = faces
    unreadable: list[Path] = []
    detector, pending = None, 0
    bar = tqdm(new, desc="detecting faces", unit="photo", disable=None if new else True)
    for photo, name, (size, mtime) in bar:
        try:
            image = read_image(photo)
        except RecordError:
            unreadable.append(photo)
            continue
        if detector is None:
            detector = FaceDetector("hog", upsample=1)  # dlib: only when something is new
        found = detect_landmarks(image, detector)
        entries[name] = {"size": size, "mtime_ns": mtime, "faces": [f.tolist() for f in found]}
        known[photo] = found
        pending += 1
        if pending >= SAVE_EVERY:
            _write_cache(path, root, entries)
            pending = 0
    if pending:
        _write_cache(path, root, entries)
    ordered = [photo for photo in photos if photo in known]
    return PhotoDetections(
        faces={photo: known[photo] for photo in ordered if known[photo]},
        faceless=[photo for photo in ordered if not known[photo]],
        unreadable=unreadable,
        detected=len(new) - len(unreadable),
    )
