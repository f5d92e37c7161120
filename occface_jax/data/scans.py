"""3D-truth datasets with subject scans: MICC Florence and NoW, in their published layouts.

MICC Florence (Bagdanov et al. 2011)::

    ROOT/subject_<nn>/Model/frontal1/obj/<stamp>.obj     the subject's scan (also frontal2, sidel, ...)
    ROOT/subject_<nn>/Video/<setting>/<name>.mjpg        videos: Indoor-Cooperative, PTZ-Indoor, PTZ-Outdoor

  Frames are read straight from the videos with OpenCV (every ``frame_step``-th frame), or from image
  files when frames were extracted into ``Video/<setting>/`` (any sub-folder).

NoW (Sanyal et al. 2019, the ``now_evaluation`` layout)::

    ROOT/imagepathsvalidation.txt | imagepathstest.txt    lines "<subject>/<challenge>/<IMG>.jpg"
    ROOT/final_release_version/iphone_pictures/<line>     (or ROOT/iphone_pictures/<line>)
    ROOT/final_release_version/detected_face/<subject>/<challenge>/<IMG>.npy   optional face box
    ROOT/scans/<subject>/*.obj                            the neutral scan (mm)
    ROOT/scans_lmks_onlypp/<subject>/*.pp                 7 landmarks, MeshLab picked-points XML

Scans load lazily (``load_scan``) so image pipelines do not pay for meshes they do not use.
"""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from occface_jax.data.errors import DatasetLayoutError, RecordError
from occface_jax.data.records import IMAGE_SUFFIXES, read_image, resize_image

VIDEO_SUFFIXES = (".mjpg", ".mjpeg", ".avi", ".mp4", ".mov", ".mkv")
MICC_SETTINGS = ("Indoor-Cooperative", "PTZ-Indoor", "PTZ-Outdoor")
NOW_SPLITS = {"val": "imagepathsvalidation.txt", "test": "imagepathstest.txt"}


def load_scan(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """A scan's vertices (N, 3) float32 (file units) and triangles (F, 3) int32, via trimesh."""
    import trimesh  # ~3 s to import; only scans need it

    path = Path(path)
    if not path.is_file():
        raise RecordError(f"{path}: no such scan file")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as err:  # trimesh raises many types for a corrupt file
        raise RecordError(f"{path}: unreadable scan ({err})") from err
    return np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32)


def read_picked_points(path: str | os.PathLike[str]) -> np.ndarray:
    """Points (K, 3) float32 of a MeshLab ``.pp`` picked-points file, in file order."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        raise RecordError(f"{path}: unreadable picked-points file ({err})") from err
    points = [[float(p.get(a)) for a in ("x", "y", "z")] for p in root.iter("point")]
    if not points:
        raise RecordError(f"{path}: no <point> elements")
    return np.asarray(points, np.float32)


# ------------------------------------------------------------------------------------------ MICC


@dataclasses.dataclass(frozen=True)
class MiccFrame:
    """One MICC frame: subject, setting, the file it comes from and its frame number in a video."""

    subject: str
    setting: str
    source: Path
    frame: int


def _video_frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()


def _read_video_frame(path: Path, frame: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, bgr = capture.read()
    finally:
        capture.release()
    if not ok or bgr is None:
        raise RecordError(f"{path}: cannot decode frame {frame}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


class MiccFlorence:
    """MICC Florence frames with their subject's scan path: records ``image`` (float32 RGB, resized to
    ``image_size`` if given), ``subject``, ``setting``, ``frame`` int, ``scan_path`` str (load it with
    :func:`load_scan`; units are the scanner's, mm)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        settings: tuple[str, ...] = MICC_SETTINGS,
        frame_step: int = 1,
        image_size: tuple[int, int] | None = None,
        scan_view: str = "frontal1",
    ) -> None:
        self.root = Path(root)
        subjects = sorted(p for p in self.root.glob("subject_*") if p.is_dir())
        if not subjects:
            raise DatasetLayoutError(
                f"{self.root}: no subject_<nn>/ folders (MICC Florence layout)"
            )
        self.scans: dict[str, Path | None] = {}
        self.frames: list[MiccFrame] = []
        for subject in subjects:
            objs = sorted((subject / "Model" / scan_view / "obj").glob("*.obj"))
            self.scans[subject.name] = objs[0] if objs else None
            for setting in settings:
                folder = subject / "Video" / setting
                files = (
                    sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
                )
                images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
                self.frames += [
                    MiccFrame(subject.name, setting, p, i) for i, p in enumerate(images)
                ]
                for video in (p for p in files if p.suffix.lower() in VIDEO_SUFFIXES):
                    count = _video_frame_count(video)
                    self.frames += [
                        MiccFrame(subject.name, setting, video, i)
                        for i in range(0, count, frame_step)
                    ]
        self.image_size = None if image_size is None else tuple(image_size)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.frames[index]
        if item.source.suffix.lower() in VIDEO_SUFFIXES:
            image = _read_video_frame(item.source, item.frame)
        else:
            image = read_image(item.source)
        if self.image_size is not None:
            image = resize_image(image, self.image_size)
        scan = self.scans[item.subject]
        if scan is None:
            raise RecordError(f"{item.subject}: no scan under Model/*/obj/")
        return {
            "image": image,
            "subject": item.subject,
            "setting": item.setting,
            "frame": item.frame,
            "scan_path": str(scan),
        }


# ------------------------------------------------------------------------------------------ NoW


def _now_image_root(root: Path) -> Path:
    for candidate in (root / "final_release_version" / "iphone_pictures", root / "iphone_pictures"):
        if candidate.is_dir():
            return candidate
    raise DatasetLayoutError(f"{root}: no final_release_version/iphone_pictures/ (NoW layout)")


def read_now_box(path: Path) -> np.ndarray | None:
    """NoW's detected face box (left, top, right, bottom) px from its ``.npy`` (a pickled dict), or
    None when absent. The file is a pickle: read NoW's own release only."""
    if not path.is_file():
        return None
    data = np.load(path, allow_pickle=True)
    box = data.item() if data.dtype == object else data
    if isinstance(box, dict):
        return np.array([box["left"], box["top"], box["right"], box["bottom"]], np.float32)
    return np.asarray(box, np.float32).reshape(4)


class NoWDataset:
    """NoW records: ``image`` float32 RGB (resized to ``image_size`` if given; ``box`` scaled with it),
    ``box`` (4,) float32 left, top, right, bottom px (NaN when absent), ``subject``, ``challenge``,
    ``path`` (the list line), ``scan_path`` str and ``scan_landmarks`` (7, 3) float32 (scan units, mm).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "val",
        image_size: tuple[int, int] | None = None,
    ) -> None:
        self.root = Path(root)
        if split not in NOW_SPLITS:
            raise ValueError(f"split must be one of {list(NOW_SPLITS)}, got {split!r}")
        list_path = self.root / NOW_SPLITS[split]
        if not list_path.is_file():
            raise DatasetLayoutError(f"{list_path}: NoW image list not found")
        self.image_root = _now_image_root(self.root)
        self.box_root = self.image_root.parent / "detected_face"
        self.lines = [ln.strip() for ln in list_path.read_text().splitlines() if ln.strip()]
        self.image_size = None if image_size is None else tuple(image_size)

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, index: int) -> dict[str, Any]:
        line = self.lines[index]
        parts = Path(line).parts
        if len(parts) < 3:
            raise RecordError(f"NoW list line {line!r} is not <subject>/<challenge>/<image>")
        subject, challenge = parts[-3], parts[-2]
        image = read_image(self.image_root / line)
        box_path = (self.box_root / line).with_suffix(".npy")
        box = read_now_box(box_path)
        box = np.full(4, np.nan, np.float32) if box is None else box
        if self.image_size is not None:
            h, w = image.shape[:2]
            box = box * np.array([self.image_size[1] / w, self.image_size[0] / h] * 2, np.float32)
            image = resize_image(image, self.image_size)
        scans = sorted((self.root / "scans" / subject).glob("*.obj"))
        lmks = sorted((self.root / "scans_lmks_onlypp" / subject).glob("*.pp"))
        if not scans or not lmks:
            raise RecordError(
                f"{subject}: scan (scans/{subject}/*.obj) or landmarks (*.pp) missing"
            )
        return {
            "image": image,
            "box": box,
            "subject": subject,
            "challenge": challenge,
            "path": line,
            "scan_path": str(scans[0]),
            "scan_landmarks": read_picked_points(lmks[0]),
        }
