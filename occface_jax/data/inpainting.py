"""Training data of the de-occlusion GANs: N_cont (contour completion) and N_syn (face synthesis).

- :class:`InpaintingPairs` turns occluded-face records (the synthetic engine's, ``OccludedPhotos``')
  into inpainting pairs: the network input ``image``, the ground truth ``clean``, the ``mask`` of the
  hole, the gray images N_cont sees and the complete contour map ``contour`` (C_true). A fraction of
  the samples swap the occluder for a free-form hole (``data.freeform``) inside the face's box, as
  free-form inpainting GANs train.
- :class:`FaceCrops` makes real face photos into training records: every annotated face (with
  ``detect``, every face dlib finds in the unannotated photos too, detected once and cached:
  :mod:`occface_jax.data.detected`), aligned as the pipeline aligns (Deng et al.'s 224 crop),
  resized. These go through ``OccludedPhotos`` (landmarks give the face region), then
  :class:`InpaintingPairs` (or, for the regressor, :mod:`occface_jax.data.regressor`).
- :class:`Mixture` mixes sources (synthetic, photos) in given fractions, deterministically by index.

Records of :class:`InpaintingPairs` (float32 unless said):

| key | shape | meaning |
| --- | --- | --- |
| image | (S, S, 3) | network input: the occluded photo; for a free-form sample ``clean`` with the hole mid-gray (0.5) |
| clean | (S, S, 3) | ground truth, RGB in [0, 1] |
| mask | (S, S) | 1 = hole: the occluder mask dilated by a disk, or the free-form mask |
| gray | (S, S) | BT.601 luma of ``image`` (what N_cont sees outside the hole) |
| gray_clean | (S, S) | BT.601 luma of ``clean`` |
| contour | (S, S) | Canny (sigma 1.8) of ``clean``: the complete contour map C_true |
| mask_ratio | () | hole pixels inside the face region / face-region pixels |
| freeform | () bool | the hole is a free-form mask (an occluder-free sample) |
| index | () int64 | the sample index |
| source | () int64 | which source of a :class:`Mixture` the record came from (only then) |
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from occface_jax.data.contour import canny_contour, to_gray
from occface_jax.data.detected import detect_photo_faces
from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.folder import list_images, read_landmarks68
from occface_jax.data.freeform import free_form_mask, mask_ratio, region_box
from occface_jax.data.records import read_image, resize_image, scale_points
from occface_jax.errors import OccfaceError
from occface_jax.faces.align import TARGET_SIZE, align_face
from occface_jax.faces.landmarks_io import DLIB_XML_GLOB, read_dlib_xml

# InpaintingPairs draws from default_rng([seed, index, _STREAM]): the extra word keeps its draws apart
# from a wrapped source seeded alike (OccludedPhotos uses default_rng([seed, index])), whose occluder
# choice would otherwise be correlated with the free-form coin.
_STREAM = 0x1A9A
FILL_VALUE = 0.5  # what a free-form hole is filled with in ``image``


def _repr(source: Any) -> str:
    """A source's repr that is the same in every process (as ``pipeline.source_repr``, which is not
    imported here: the pipeline module imports the renderer and JAX)."""
    if type(source).__repr__ is not object.__repr__:
        return repr(source)
    return f"{type(source).__name__}(len={len(source)})"


def disk(radius: int) -> np.ndarray:
    """(2r + 1, 2r + 1) uint8 structuring element: the offsets (dx, dy) with dx^2 + dy^2 <= r^2."""
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy <= r * r).astype(np.uint8)


def dilation_radius(dilation: float, shape: tuple[int, int]) -> int:
    """Disk radius in whole pixels for a dilation given as a fraction of the image side (the larger
    side): rounded, at least 1 when ``dilation`` > 0."""
    if dilation <= 0:
        return 0
    return max(1, round(dilation * max(shape)))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) float32 {0, 1}: ``mask`` (> 0.5) dilated by a disk of ``radius`` pixels."""
    binary = (np.asarray(mask) > 0.5).astype(np.uint8)
    if radius > 0:
        binary = cv2.dilate(binary, disk(radius))
    return binary.astype(np.float32)


class InpaintingPairs:
    """Inpainting pairs (keys in the module doc) over a source whose records have ``clean``,
    ``occluded``, ``mask`` and ``face_region`` (``SyntheticFaces``, ``OccludedPhotos``).

    Sample ``i`` is built from the source's record ``i`` and ``np.random.default_rng([seed, i, _STREAM])``:
    with probability ``p_freeform``, and always when the record has no occluder over the face, the
    hole is a :func:`~occface_jax.data.freeform.free_form_mask` in
    the bounding box of the face region (the whole image when the region is empty) and ``image`` is
    ``clean`` with the hole filled with mid-gray; otherwise the hole is the source's occluder mask
    dilated by a disk of ``dilation`` x the image side (rounded to whole pixels: 0.015 is 2 px at 128),
    to cover the occluder's soft fringe (alpha < 0.5) and its edges, and ``image`` the occluded photo.
    """

    def __init__(
        self, source: Any, seed: int = 0, p_freeform: float = 0.25, dilation: float = 0.0
    ) -> None:
        if not 0.0 <= p_freeform <= 1.0:
            raise ValueError(f"p_freeform must be in [0, 1], got {p_freeform}")
        if dilation < 0:
            raise ValueError(
                f"dilation must be >= 0 (a fraction of the image side), got {dilation}"
            )
        self.source, self.seed = source, int(seed)
        self.p_freeform, self.dilation = float(p_freeform), float(dilation)

    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        return (
            f"InpaintingPairs({_repr(self.source)}, seed={self.seed}, "
            f"p_freeform={self.p_freeform}, dilation={self.dilation})"
        )

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        record = self.source[index]
        rng = np.random.default_rng([self.seed, index, _STREAM])
        clean = np.asarray(record["clean"], np.float32)
        region = np.asarray(record["face_region"]) > 0.5
        shape = clean.shape[:2]
        occluder = np.asarray(record["mask"]) > 0.5
        # A record without an occluder over the face (the engine's clean share) gets a free-form
        # hole too: an empty hole teaches nothing and scores nothing.
        freeform = bool(rng.random() < self.p_freeform) or not occluder.any()
        if freeform:
            hole = free_form_mask(rng, shape, region_box(region))
            image = np.where(hole[..., None] > 0, np.float32(FILL_VALUE), clean)
        else:
            hole = dilate(record["mask"], dilation_radius(self.dilation, shape))
            image = np.asarray(record["occluded"], np.float32)
        return {
            "image": image,
            "clean": clean,
            "mask": hole,
            "gray": to_gray(image),
            "gray_clean": to_gray(clean),
            "contour": canny_contour(clean),
            "mask_ratio": np.float32(mask_ratio(hole, region)),
            "freeform": np.bool_(freeform),
            "index": np.int64(index),
            **({"source": np.int64(record["source"])} if "source" in record else {}),
        }


class FaceCrops:
    """Every face of a folder of photos as a record: ``image`` (S, S, 3) float32 in [0, 1],
    the Deng et al. aligned crop (``faces.align.align_face``, 224 px) resized to ``image_size`` S;
    ``landmarks`` (68, 2) float32 in crop pixels; ``path`` str, the photo relative to ``root`` with
    ``#k`` for its k-th face.

    Annotations: a 68-point ``<stem>.pts`` or ``<stem>.ljson`` beside a photo (one face) and every
    dlib/imglab ``*_with_face_landmarks.xml`` in the folder (several faces per photo, file names
    relative to the XML). With ``detect``, the photos that have none of these get the 68 landmarks
    of every face dlib's HOG detector finds (:func:`occface_jax.data.detected.detect_photo_faces`:
    detected once, cached in ``cache``, default the cache folder's file for ``root``); photos
    without a face are left out (``faceless``), as are photos that do not decode (``unreadable``);
    ``detected`` lists the photos whose faces were detected. Faces are ordered by photo path, then
    the beside-file's face (or the detected faces, largest first), then the XMLs' (sorted) in their
    order. Photos are decoded on first use, and the crops of all their faces are kept in memory
    (not pickled: each worker process rebuilds its own). Raises :class:`DatasetLayoutError` when
    the folder has no usable face; photos an XML lists that do not exist are left out (``missing``
    names them).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_size: int = TARGET_SIZE,
        recursive: bool = True,
        detect: bool = False,
        cache: str | os.PathLike[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.image_size = int(image_size)
        photos = list_images(self.root, recursive)  # DatasetLayoutError when root is no folder
        faces: dict[Path, list[np.ndarray]] = {}
        for photo in photos:
            try:
                landmarks = read_landmarks68(photo)
            except OccfaceError:  # a bad landmark file: the photo has no beside-file face
                landmarks = None
            if landmarks is not None:
                faces.setdefault(photo, []).append(np.asarray(landmarks, np.float64))
        self.missing: list[str] = []
        xmls = sorted((self.root.rglob if recursive else self.root.glob)(DLIB_XML_GLOB))
        for xml in xmls:
            try:
                listed = read_dlib_xml(xml)
            except OccfaceError as err:
                raise DatasetLayoutError(str(err).splitlines()[0]) from err
            for name, annotated in listed.items():
                photo = Path(os.path.normpath(xml.parent / name))
                if not photo.is_file():
                    self.missing.append(str(photo))
                    continue
                for face in annotated:
                    if face.landmarks.shape == (68, 2):
                        faces.setdefault(photo, []).append(np.asarray(face.landmarks, np.float64))
        self.detect = bool(detect)
        self.detected: list[str] = []
        self.faceless: list[str] = []
        self.unreadable: list[str] = []
        with_faces = {os.path.normpath(photo) for photo in faces}
        unannotated = [photo for photo in photos if os.path.normpath(photo) not in with_faces]
        if self.detect and unannotated:
            found = detect_photo_faces(self.root, unannotated, cache)
            faces.update(found.faces)
            self.detected = [self._relative(p) for p in sorted(found.faces)]
            self.faceless = [self._relative(p) for p in found.faceless]
            self.unreadable = [self._relative(p) for p in found.unreadable]
        self.faces: list[tuple[Path, int, np.ndarray]] = [
            (photo, k, landmarks)
            for photo in sorted(faces)
            for k, landmarks in enumerate(faces[photo])
        ]
        if not self.faces and self.detect:
            raise DatasetLayoutError(
                f"{self.root}: no face in {len(photos)} image file(s) ({len(self.faceless)} "
                f"without a face dlib finds, {len(self.unreadable)} unreadable)"
            )
        if not self.faces:
            raise DatasetLayoutError(
                f"{self.root}: no annotated face (expected photos with a 68-point <stem>.pts or "
                f"<stem>.ljson beside them, or a dlib {DLIB_XML_GLOB} listing photos)"
            )
        self._crops: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.faces)

    def __repr__(self) -> str:
        detect = ", detect=True" if self.detect else ""
        return f"FaceCrops({str(self.root)!r}, image_size={self.image_size}{detect}, {len(self)} faces)"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_crops": {}}

    def _relative(self, photo: Path) -> str:
        return os.path.relpath(photo, self.root)

    def _load(self, photo: Path) -> None:
        """Decode ``photo`` and keep the crops of all its faces."""
        image = read_image(photo)
        size = (self.image_size, self.image_size)
        for index, (other, _, landmarks) in enumerate(self.faces):
            if other != photo:
                continue
            aligned = align_face(image, landmarks)
            crop = np.clip(np.asarray(aligned.image, np.float32), 0.0, 1.0)
            points = np.asarray(aligned.landmarks, np.float64)
            if self.image_size != TARGET_SIZE:
                crop = resize_image(crop, size)
                points = scale_points(points, (TARGET_SIZE, TARGET_SIZE), size)
            self._crops[index] = (crop, points.astype(np.float32))

    def __getitem__(self, index: int) -> dict[str, Any]:
        photo, k, _ = self.faces[int(index)]
        index = int(index) % len(self.faces)
        if index not in self._crops:
            self._load(photo)
        crop, points = self._crops[index]
        return {
            "image": crop.copy(),
            "landmarks": points.copy(),
            "path": f"{self._relative(photo)}#{k}",
        }


class Mixture:
    """A deterministic mixture of sources: record ``i`` draws, from ``np.random.default_rng([seed, i])``,
    source ``k`` with probability ``fractions[k]`` (normalised), then its record ``j`` uniformly; the
    record gets a ``source`` field (int64 ``k``). ``len`` is ``size``, else the sum of the sources'
    lengths. Picklable when the sources are.
    """

    def __init__(
        self,
        sources: Sequence[Any],
        fractions: Sequence[float],
        size: int | None = None,
        seed: int = 0,
    ) -> None:
        self.sources = list(sources)
        weights = np.asarray(fractions, np.float64)
        if weights.shape != (len(self.sources),) or not self.sources:
            raise ValueError(
                f"Mixture needs one fraction per source: {len(self.sources)} source(s), "
                f"fractions {list(fractions)}"
            )
        if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"Mixture fractions must be >= 0 with a positive sum, got {weights}")
        empty = [k for k, s in enumerate(self.sources) if weights[k] > 0 and len(s) == 0]
        if empty:
            raise ValueError(f"Mixture sources {empty} are empty but have a positive fraction")
        self.fractions = weights / weights.sum()
        self._cumulative = np.cumsum(self.fractions)
        self.size = None if size is None else int(size)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.size if self.size is not None else sum(len(s) for s in self.sources)

    def __repr__(self) -> str:
        sources = ", ".join(_repr(s) for s in self.sources)
        fractions = ", ".join(f"{f:.6g}" for f in self.fractions)
        return f"Mixture([{sources}], fractions=[{fractions}], size={len(self)}, seed={self.seed})"

    def choose(self, index: int) -> tuple[int, int]:
        """(source k, record j) of mixture record ``index``."""
        rng = np.random.default_rng([self.seed, int(index)])
        k = int(np.searchsorted(self._cumulative, rng.random(), side="right"))
        k = min(k, len(self.sources) - 1)  # rounding: the cumulative sum may end just below 1
        while self.fractions[k] == 0:  # ... and then never on a source that has no share
            k -= 1
        return k, int(rng.integers(len(self.sources[k])))

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"Mixture index {index} out of range [0, {len(self)})")
        k, j = self.choose(index)
        return {**self.sources[k][j], "source": np.int64(k)}
