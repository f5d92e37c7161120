"""MediaPipe's 468-point face mesh on a photo, with the network in JAX
(``occface_jax.models.face_mesh``): the face region from a BlazeFace detection (or a box), the
192x192 rotated crop, and the landmarks mapped back to the photo.

Region of interest as MediaPipe's face-landmark graph computes it (DetectionsToRectsCalculator +
RectTransformationCalculator): centre = detection box centre; rotation = angle of the vector from
keypoint 0 (subject's right eye, image left) to keypoint 1 (left eye), so that the eyes are level in
the crop; side = 1.5 x the longer box side (square). From landmarks (``roi_from_landmarks``, used to
refine): rotation from mesh points 33 -> 263 (outer eye corners), box = landmark bounds, same scaling.

The crop is bilinear with replicated borders, RGB in [0, 1]. Coordinates are the project convention
(x right, y down, pixel centres at integer + 0.5); returned landmarks are (468, 3): x, y in photo
pixels, z in the same pixel scale (relative depth, MediaPipe's: smaller = closer to the camera,
roughly zero at the face's centre).
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from occface_jax.errors import WeightsFileError
from occface_jax.faces.detect import Face, to_float_rgb
from occface_jax.faces.mesh68 import NUM_MESH_POINTS
from occface_jax.models.face_mesh import INPUT_SIZE, load_face_mesh

ROI_SCALE = 1.5
#: Region search: first-round scales of each starting region and shift (fraction of the side, the
#: four axis directions), then the refinement round's around the consensus; presence threshold.
SEARCH_SCALES = (0.85, 1.0, 1.2)
SEARCH_SHIFT = 0.1
REFINE_SCALES = (0.9, 1.0, 1.1)
REFINE_SHIFT = 0.06
REFINE_ROUNDS = 3
PRESENT = 0.5
#: When no crop of the first round scores present, the first round again at these smaller scales,
#: taken when one of its crops does (an occluder merged into the face can inflate a detector's
#: box: BlazeFace's under a phone over Einstein's face was 1.6 x the face's).
WIDE_SCALES = (0.5, 0.6, 0.7)
#: When the search still ends below ``PRESENT`` (thin strands over the face, hair or cables, throw
#: the network off), its first round runs again on crops cleared of strands: grayscale closing
#: (removes dark strands thinner than the kernel) and opening (light ones), per channel, with an
#: elliptical kernel of these sides in crop pixels (the face box is ~128 of the 192). The filter
#: whose first round has the most present crops is taken when at least ``CLEARED_VOTES`` of them
#: are (one lucky crop can score a face-like pattern on a filtered occluder), and its search kept
#: when it scores higher.
STRAND_KERNELS = (3, 5, 7)
CLEARED_VOTES = 0.1
EYE_CORNERS = (33, 263)  # mesh points: subject's right eye outer corner, left eye outer corner
MIRROR_FILE = Path(__file__).parent / "data" / "mesh_mirror.npz"


@dataclasses.dataclass(frozen=True)
class FaceRegion:
    """A square, rotated face region: centre (x, y) and side in photo pixels, rotation in radians
    (clockwise on screen, i.e. from +x towards +y)."""

    centre: np.ndarray
    side: float
    rotation: float

    def crop_to_image(self, size: int = INPUT_SIZE) -> np.ndarray:
        """(2, 3) affine map from crop pixels (size x size) to photo pixels."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        linear = np.array([[c, -s], [s, c]]) * (self.side / size)
        translation = self.centre - linear @ np.array([size / 2.0, size / 2.0])
        return np.concatenate([linear, translation[:, None]], axis=1)


@dataclasses.dataclass(frozen=True)
class FaceMeshResult:
    """468 landmarks (468, 3) (x, y photo pixels, z relative, same scale), face presence
    probability in [0, 1], and the region the crop was taken from."""

    landmarks: np.ndarray
    score: float
    region: FaceRegion
    cleared: str = ""  # the strand filter its crops went through ("closing 5 px"), "" for none


def _square_region(box: np.ndarray, rotation: float, scale: float) -> FaceRegion:
    box = np.asarray(box, np.float64)
    centre = (box[:2] + box[2:]) / 2.0
    side = float(np.max(box[2:] - box[:2])) * scale
    return FaceRegion(centre, side, float(rotation))


def _angle(start: np.ndarray, end: np.ndarray) -> float:
    dx, dy = np.asarray(end, np.float64) - np.asarray(start, np.float64)
    return float(np.arctan2(dy, dx))


def roi_from_detection(face: Face, scale: float = ROI_SCALE) -> FaceRegion:
    """MediaPipe's face region from a BlazeFace detection (box + 6 keypoints)."""
    keypoints = np.asarray(face.landmarks)
    return _square_region(face.box, _angle(keypoints[0], keypoints[1]), scale)


def roi_from_box(box: np.ndarray, scale: float = ROI_SCALE) -> FaceRegion:
    """An upright square region around a box (x0, y0, x1, y1), e.g. from another face detector."""
    return _square_region(box, 0.0, scale)


def roi_from_landmarks(landmarks: np.ndarray, scale: float = ROI_SCALE) -> FaceRegion:
    """MediaPipe's face region from 468 mesh landmarks (used to track, or to refine a crop)."""
    points = np.asarray(landmarks)[:, :2]
    box = np.concatenate([points.min(axis=0), points.max(axis=0)])
    return _square_region(box, _angle(points[EYE_CORNERS[0]], points[EYE_CORNERS[1]]), scale)


def jittered_regions(
    regions: list[FaceRegion], scales: tuple[float, ...], shift: float
) -> list[FaceRegion]:
    """Each region at each scale, centred and shifted by ``shift`` x its scaled side along +-x and
    +-y of the photo (rotation kept): len(regions) x len(scales) x 5 regions (x 1 when shift is 0)."""
    offsets = [(0.0, 0.0)] + ([(shift, 0.0), (-shift, 0.0), (0.0, shift), (0.0, -shift)] if shift else [])  # fmt: skip
    return [
        FaceRegion(r.centre + r.side * s * np.asarray(o), r.side * s, r.rotation)
        for r in regions
        for s in scales
        for o in offsets
    ]


def consensus(landmarks: np.ndarray, presence: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-point median of the meshes (N, 468, 3) whose presence (N,) is >= ``PRESENT``, or the
    best-scoring mesh when none is; and the highest presence."""
    present = presence >= PRESENT
    if present.any():
        return np.median(landmarks[present], axis=0), float(presence.max())
    best = int(np.argmax(presence))
    return landmarks[best], float(presence[best])


def crop_face(image: np.ndarray, region: FaceRegion, size: int = INPUT_SIZE) -> np.ndarray:
    """The (size, size, 3) float32 RGB [0, 1] crop of ``region`` (bilinear, replicated borders)."""
    return _crop_rgb(to_float_rgb(image), region, size)


def _crop_rgb(rgb: np.ndarray, region: FaceRegion, size: int = INPUT_SIZE) -> np.ndarray:
    """:func:`crop_face` of a photo already float32 RGB in [0, 1] (converted once per photo)."""
    matrix = region.crop_to_image(size)
    # OpenCV addresses pixels by index (centres at integers): shift by half a pixel on both sides.
    index_matrix = matrix.copy()
    index_matrix[:, 2] += matrix[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(
        rgb,
        index_matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def crop_points_to_image(
    points: np.ndarray, region: FaceRegion, size: int = INPUT_SIZE
) -> np.ndarray:
    """Network landmarks (..., 3) in crop pixels -> photo pixels (x, y) and z scaled alike."""
    matrix = region.crop_to_image(size)
    points = np.asarray(points, np.float64)
    xy = points[..., :2] @ matrix[:, :2].T + matrix[:, 2]
    z = points[..., 2:3] * (region.side / size)
    return np.concatenate([xy, z], axis=-1)


def read_mesh_mirror(path: str | os.PathLike[str] = MIRROR_FILE) -> np.ndarray:
    """(468,) int: the mesh point each point becomes on the mirrored face (``mirror[i]``: the point
    of the subject's other side; midline points map to themselves; an involution), derived by
    ``tools/derive_mesh_mirror.py``. WeightsFileError (one line) for a missing, corrupt or
    inconsistent file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            mirror = np.asarray(data["mirror"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise WeightsFileError(f"face-mesh mirror map {path}: unreadable ({err})") from err
    points = np.arange(NUM_MESH_POINTS)
    if mirror.shape != points.shape or not np.array_equal(np.sort(mirror), points) or not np.array_equal(mirror[mirror], points):  # fmt: skip
        raise WeightsFileError(
            f"face-mesh mirror map {path}: not a self-inverse permutation of the "
            f"{NUM_MESH_POINTS} points"
        )
    return mirror


def mirror_mesh(points: np.ndarray, mirror: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """The network's points (..., 468, 3) on a crop mirrored left-right (``crop[:, ::-1]``), in
    crop pixels -> the same face's points on the unmirrored crop: x -> size - x (pixel centres
    at integer + 0.5), and each point takes its mirror partner's place."""
    points = np.array(points, np.float64)
    points[..., 0] = size - points[..., 0]
    return points[..., mirror, :]


@dataclasses.dataclass(frozen=True)
class StrandFilter:
    """Grayscale morphology on crops (N, S, S, 3) that removes strands thinner than ``kernel``
    crop pixels: ``closing`` the dark ones (hair over skin), ``opening`` the light ones."""

    operation: str  # "closing" | "opening"
    kernel: int

    def __str__(self) -> str:
        return f"{self.operation} {self.kernel} px"

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        operation = {"closing": cv2.MORPH_CLOSE, "opening": cv2.MORPH_OPEN}[self.operation]
        element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.kernel, self.kernel))
        return np.stack([cv2.morphologyEx(c, operation, element) for c in crops])


def strand_filters(kernels: tuple[int, ...] | None = None) -> list[StrandFilter]:
    """Closing and opening at each kernel side (crop pixels; default ``STRAND_KERNELS``)."""
    kernels = STRAND_KERNELS if kernels is None else kernels
    return [StrandFilter(op, k) for k in kernels for op in ("closing", "opening")]


class FaceMesh:
    """MediaPipe's 468-point face landmarker in JAX. ``weights``: a ``.tflite`` or converted ``.npz``
    (default: the cache); ``refine``: extra passes re-cropping from the previous pass's landmarks;
    ``flip``: every crop mirrored too; ``strands``: :meth:`search` retries a lost face on crops
    cleared of strands (``STRAND_KERNELS``)."""

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        refine: int = 0,
        flip: bool = False,
        strands: bool = False,
    ) -> None:
        self.net = load_face_mesh(weights)
        self.refine = refine
        self.mirror = read_mesh_mirror() if flip else None
        self.strand_filters = strand_filters() if strands else []
        graphdef, state = nnx.split(self.net)
        self._state = state
        self._forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))

    def raw(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network outputs for (N, 192, 192, 3) crops in [0, 1]: landmarks (N, 468, 3) in crop
        pixels and presence logits (N,)."""
        landmarks, logits = self._forward(self._state, jnp.asarray(crops, jnp.float32))
        return np.asarray(landmarks), np.asarray(logits)

    def landmarks(self, image: np.ndarray, face: Face | FaceRegion | np.ndarray) -> FaceMeshResult:
        """Landmarks of one face given a BlazeFace detection, a ``FaceRegion`` or a box."""
        if isinstance(face, FaceRegion):
            region = face
        elif isinstance(face, Face):
            if np.shape(face.landmarks) == (6, 2):
                region = roi_from_detection(face)
            else:
                region = roi_from_box(face.box)
        else:
            region = roi_from_box(np.asarray(face))
        rgb = to_float_rgb(image)
        for step in range(self.refine + 1):
            landmarks, score = consensus(*self._batch(rgb, [region]))
            if step < self.refine:
                region = roi_from_landmarks(landmarks)
        return FaceMeshResult(landmarks, score, region)

    def _batch(
        self, rgb: np.ndarray, regions: list[FaceRegion], crop_filter: StrandFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks (N, 468, 3) in photo pixels and presence (N,) of each region's crop of the
        photo ``rgb`` (float32 RGB in [0, 1], see ``to_float_rgb``), through ``crop_filter``."""
        crops = np.stack([_crop_rgb(rgb, r) for r in regions])
        if crop_filter is not None:
            crops = crop_filter(crops)
        points, logits = self.raw(crops)
        if self.mirror is not None:  # each crop mirrored too, its mesh mirrored back
            flipped, flipped_logits = self.raw(crops[:, :, ::-1])
            points = np.concatenate([points, mirror_mesh(flipped, self.mirror)])
            logits = np.concatenate([logits, flipped_logits])
            regions = regions + regions
        landmarks = np.stack(
            [crop_points_to_image(p, r) for p, r in zip(points, regions, strict=True)]
        )
        return landmarks, 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))

    def search(self, image: np.ndarray, regions: list[FaceRegion]) -> FaceMeshResult:
        """Landmarks of one face by the region search from starting ``regions`` (e.g. a box's
        upright region and a BlazeFace detection's rotated one): each region at ``SEARCH_SCALES``
        and shifted by ``SEARCH_SHIFT`` (when none of those crops scores present: at
        ``WIDE_SCALES`` instead if one of those does), the :func:`consensus` of the meshes; then
        ``REFINE_ROUNDS`` rounds of the same around the consensus's region (``REFINE_SCALES``,
        ``REFINE_SHIFT``). With ``flip`` every crop's mirror image joins each consensus. With
        ``strands``, a search that ends below ``PRESENT`` is repeated through the strand filter
        whose first round scores highest, when that one is present; the better result is kept."""
        rgb = to_float_rgb(image)
        result = self._refined(rgb, self._first_round(rgb, regions)[:2])
        if result.score >= PRESENT or not self.strand_filters:
            return result
        rounds = [(self._first_round(rgb, regions, f), f) for f in self.strand_filters]
        (landmarks, score, votes), crop_filter = max(rounds, key=lambda r: r[0][2])
        if votes < CLEARED_VOTES:
            return result
        cleared = self._refined(rgb, (landmarks, score), crop_filter)
        return cleared if cleared.score > result.score else result

    def _first_round(
        self, rgb: np.ndarray, regions: list[FaceRegion], crop_filter: StrandFilter | None = None
    ) -> tuple[np.ndarray, float, float]:
        """The search's first round (or its wide round when the first finds no face and the wide
        one does): the consensus, its score and the share of the round's crops scoring present."""

        def round_(scales: tuple[float, ...]) -> tuple[np.ndarray, float, float]:
            landmarks, presence = self._batch(rgb, jittered_regions(regions, scales, SEARCH_SHIFT), crop_filter)  # fmt: skip
            return *consensus(landmarks, presence), float(np.mean(presence >= PRESENT))

        found = round_(SEARCH_SCALES)
        if found[1] < PRESENT:
            wide = round_(WIDE_SCALES)
            if wide[1] >= PRESENT:  # a failed first round gives way only to a found face
                found = wide
        return found

    def _refined(
        self,
        rgb: np.ndarray,
        found: tuple[np.ndarray, float],
        crop_filter: StrandFilter | None = None,
    ) -> FaceMeshResult:
        """``REFINE_ROUNDS`` re-crops around the landmarks ``found`` (with their score)."""
        landmarks, score = found
        region = roi_from_landmarks(landmarks)
        for _ in range(REFINE_ROUNDS):
            region = roi_from_landmarks(landmarks)
            landmarks, score = consensus(*self._batch(rgb, jittered_regions([region], REFINE_SCALES, REFINE_SHIFT), crop_filter))  # fmt: skip
        return FaceMeshResult(landmarks, score, region, str(crop_filter or ""))
