"""Landmark files in, one parser per format, all returning (N, 2) float64 (x, y) arrays in the project
pixel convention (x right, y down, pixel centres at integer + 0.5).

- iBUG ``.pts`` (300-W): ``version: 1``, ``n_points: N``, ``{``, N lines ``x y``, ``}``; coordinates are
  1-based pixel indices (Matlab), so 0.5 is subtracted.
- menpo ``.ljson`` (versions 2 and 3): 2-D points are stored as (y, x) 0-based pixel indices, so they
  are swapped and 0.5 added; 3-D points (menpo3d meshes) are returned as stored (x, y, z).
- dlib XML (imglab, ``*_with_face_landmarks.xml``): per image, boxes with ``<part name x y>``; integer
  0-based pixel indices, so 0.5 is added.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from occface_jax.faces.errors import LandmarkFileError

PathLike = str | os.PathLike[str]


def _open_text(path: PathLike) -> str:
    path = Path(path)
    if not path.is_file():
        raise LandmarkFileError(f"{path}: no such landmark file")
    try:
        return path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as err:
        raise LandmarkFileError(f"{path}: not a text landmark file ({err.reason})") from err


def read_pts(path: PathLike, one_based: bool = True) -> np.ndarray:
    """Read an iBUG ``.pts`` file into (N, 2) (x, y) project pixel coordinates."""
    lines = [line.strip() for line in _open_text(path).splitlines() if line.strip()]
    header = dict(line.split(":", 1) for line in lines if ":" in line)
    try:
        n_points = int(header["n_points"])
        start, end = lines.index("{"), lines.index("}")
        points = np.array([[float(v) for v in line.split()] for line in lines[start + 1 : end]])
    except (KeyError, ValueError) as err:
        raise LandmarkFileError(
            f"{path}: not an iBUG .pts file (needs 'n_points: N' and x y lines between braces)"
        ) from err
    if points.shape != (n_points, 2):
        raise LandmarkFileError(f"{path}: header says {n_points} points, found {points.shape[0]}")
    return points - (0.5 if one_based else -0.5)


def write_pts(path: PathLike, points: np.ndarray) -> None:
    """Write (N, 2) project-convention points as an iBUG ``.pts`` file (1-based)."""
    points = np.asarray(points, np.float64)
    body = "\n".join(f"{x + 0.5:.6f} {y + 0.5:.6f}" for x, y in points)
    Path(path).write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n")


#: The iBUG-68 parts in index order, each with the label names menpo files give it ("left" is the
#: image's left, as in menpo's ``ibug_face_68`` labels; older menpo3d files say "leye", "chin").
IBUG68_PARTS = (
    (("jaw", "chin"), 17),
    (("left_eyebrow", "leyebrow"), 5),
    (("right_eyebrow", "reyebrow"), 5),
    (("nose",), 9),
    (("left_eye", "leye"), 6),
    (("right_eye", "reye"), 6),
    (("mouth",), 20),
)


def ibug68_order(labels: list[dict]) -> np.ndarray | None:
    """The file indices (68,) that put a labelled menpo group in iBUG-68 order, from its
    ``labels`` ([{"label", "mask"}]): the parts in iBUG order, each part's points in file order.
    None when the labels are not the seven iBUG-68 parts of their sizes (file order is kept)."""
    masks = {str(entry["label"]).lower(): list(entry["mask"]) for entry in labels}
    order: list[int] = []
    for names, size in IBUG68_PARTS:
        mask = next((masks[n] for n in names if n in masks), None)
        if mask is None or len(mask) != size:
            return None
        order += mask
    return np.asarray(order) if sorted(order) == list(range(68)) else None


def read_ljson(path: PathLike, group: str | None = None) -> np.ndarray:
    """Read menpo ``.ljson`` points: 2-D image points as (N, 2) (x, y) project coordinates; 3-D points as
    stored (N, 3). ``group``: the landmark group (default: the only or first one). A 68-point
    group labelled with the iBUG parts comes back in iBUG order whatever the file's order
    (:func:`ibug68_order`; menpo3d's ``james.ljson`` stores the eyes before the brows)."""
    try:
        data = json.loads(_open_text(path))
        if "groups" in data:  # version 3
            groups = data["groups"]
            name = group if group is not None else next(iter(groups))
            chosen = groups[name]
        else:  # version 2
            chosen = data
        points = chosen["landmarks"]["points"]
        array = np.array([[np.nan if v is None else float(v) for v in p] for p in points])
        order = ibug68_order(chosen.get("labels", [])) if len(array) == 68 else None
        if order is not None:
            array = array[order]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, StopIteration) as err:
        raise LandmarkFileError(
            f"{path}: not a menpo .ljson landmark file (group {group!r}: {err})"
        ) from err
    if array.ndim != 2 or array.shape[1] not in (2, 3):
        raise LandmarkFileError(
            f"{path}: points have shape {array.shape}, expected (N, 2) or (N, 3)"
        )
    if array.shape[1] == 2:
        return array[:, ::-1] + 0.5
    return array


@dataclass(frozen=True)
class AnnotatedFace:
    """One box of a dlib XML dataset: box (x0, y0, x1, y1) project coordinates, landmarks (N, 2)."""

    box: np.ndarray
    landmarks: np.ndarray


#: dlib's example annotations (``examples/faces/*_with_face_landmarks.xml``) and imglab's exports.
DLIB_XML_GLOB = "*_with_face_landmarks.xml"


def dlib_xml_faces(folder: PathLike) -> list[tuple[str, Path, AnnotatedFace]]:
    """Every face of the dlib XML datasets ``folder/*_with_face_landmarks.xml`` (files sorted,
    faces in file order): (name ``"<photo>#<i>"``, the photo's path, the face)."""
    out = []
    for xml in sorted(Path(folder).glob(DLIB_XML_GLOB)):
        for name, faces in read_dlib_xml(xml).items():
            out += [(f"{name}#{i}", xml.parent / name, face) for i, face in enumerate(faces)]
    return out


def read_dlib_xml(path: PathLike) -> dict[str, list[AnnotatedFace]]:
    """Read a dlib/imglab XML dataset: image file name (as written) -> its annotated faces, landmarks
    ordered by part name."""
    text = _open_text(path)
    try:
        root = ET.fromstring(text.encode("latin-1", errors="replace"))
    except ET.ParseError as err:
        raise LandmarkFileError(f"{path}: not valid XML ({err})") from err
    images = root.find("images")
    if root.tag != "dataset" or images is None:
        raise LandmarkFileError(f"{path}: not a dlib XML dataset (<dataset><images>... expected)")
    out: dict[str, list[AnnotatedFace]] = {}
    try:
        for image in images.findall("image"):
            faces = []
            for box in image.findall("box"):
                left, top = float(box.attrib["left"]), float(box.attrib["top"])
                width, height = float(box.attrib["width"]), float(box.attrib["height"])
                parts = sorted(box.findall("part"), key=lambda p: int(p.attrib["name"]))
                points = np.array([[float(p.attrib["x"]), float(p.attrib["y"])] for p in parts])
                faces.append(
                    AnnotatedFace(
                        box=np.array([left, top, left + width, top + height]),
                        landmarks=points.reshape(-1, 2) + 0.5,
                    )
                )
            out[image.attrib["file"]] = faces
    except (KeyError, ValueError) as err:
        raise LandmarkFileError(f"{path}: malformed box or part element ({err})") from err
    return out


def read_landmarks(path: PathLike) -> np.ndarray:
    """Read one face's landmarks from ``.pts`` or ``.ljson`` by extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".pts":
        return read_pts(path)
    if suffix == ".ljson":
        return read_ljson(path)
    raise LandmarkFileError(f"{path}: unknown landmark format '{suffix}' (use .pts or .ljson)")
