"""MediaPipe's iris and eye-contour landmarks on a photo, with the network in JAX
(``occface_jax.models.iris``): the eye crops from the 468 face-mesh landmarks, and the points mapped
back to the photo.

Eye regions as MediaPipe's iris_landmark_left_and_right graph computes them
(IrisLandmarkLandmarksToRoi): from two mesh points per eye, the subject's right eye 33 (outer corner)
-> 133 (inner) and the subject's left eye 362 (inner) -> 263 (outer); centre = centre of the two
corners' bounding box; rotation = angle of the vector from the first corner to the second (eyes
level in the crop); side = 2.3 x the longer side of that box (square). The network was trained on
right eyes, so the left eye's 64x64 crop is flipped horizontally (outer corner on the crop's left,
like the right eye) and its points flipped back (x -> 64 - x) before mapping to the photo.

Coordinates are the project convention (x right, y down, pixel centres at integer + 0.5); returned
points are x, y in photo pixels, z relative depth in the same pixel scale.

iBUG's eye points (36-47) from the eye contours (:func:`ibug_eyes`): each an affine combination of
a few of its eye's 71 contour points, the map (``faces/data/iris_eyes68.npz``, read as a
:class:`~occface_jax.faces.mesh68.Mesh68Map` over the 142 points right eye then left eye) fitted to
human annotations by ``tools/fit_iris68.py``; its error against the face mesh's eye points is in
``experiments/results/face_mesh_occlusion.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from occface_jax.faces.face_mesh import FaceRegion, crop_face, crop_points_to_image
from occface_jax.faces.mesh68 import Mesh68Map, read_mesh68_map
from occface_jax.models.iris import INPUT_SIZE, load_iris

EYE_ROI_SCALE = 2.3
# Mesh points (first corner, second corner) per eye, named for the subject's side.
EYE_CORNERS = {"right": (33, 133), "left": (362, 263)}
FLIPPED = {"right": False, "left": True}
CONTOUR_POINTS = 71
IBUG_EYES = slice(36, 48)  # iBUG's eye points: the subject's right eye 36-41, left eye 42-47
EYE_MAP_FILE = Path(__file__).parent / "data" / "iris_eyes68.npz"


@dataclasses.dataclass(frozen=True)
class EyeResult:
    """One eye: contour (71, 3) (eyelids and brow) and iris (5, 3) (centre, then 4 rim points), x, y
    in photo pixels, z relative in the same scale; the region the crop came from and whether the crop
    was flipped horizontally."""

    contour: np.ndarray
    iris: np.ndarray
    region: FaceRegion
    flipped: bool


def eye_region(landmarks: np.ndarray, eye: str, scale: float = EYE_ROI_SCALE) -> FaceRegion:
    """MediaPipe's square eye region ('right' or 'left', the subject's) from 468 mesh landmarks
    (photo pixels)."""
    if eye not in EYE_CORNERS:
        raise ValueError(f"eye must be one of {sorted(EYE_CORNERS)}, not {eye!r}")
    points = np.asarray(landmarks, np.float64)[list(EYE_CORNERS[eye]), :2]
    low, high = points.min(axis=0), points.max(axis=0)
    dx, dy = points[1] - points[0]
    return FaceRegion(
        (low + high) / 2.0, float(np.max(high - low)) * scale, float(np.arctan2(dy, dx))
    )


def crop_eye(image: np.ndarray, region: FaceRegion, flip: bool = False) -> np.ndarray:
    """The (64, 64, 3) float32 RGB [0, 1] crop of an eye region, mirrored left-right when ``flip``."""
    crop = crop_face(image, region, INPUT_SIZE)
    return np.ascontiguousarray(crop[:, ::-1]) if flip else crop


def eye_points_to_image(points: np.ndarray, region: FaceRegion, flip: bool = False) -> np.ndarray:
    """Network points (..., 3) in (possibly flipped) crop pixels -> photo pixels, z scaled alike."""
    points = np.array(points, np.float64)
    if flip:
        points[..., 0] = INPUT_SIZE - points[..., 0]
    return crop_points_to_image(points, region, INPUT_SIZE)


class IrisLandmarks:
    """MediaPipe's iris landmarker in JAX. ``weights``: a ``.tflite`` or converted ``.npz`` (default:
    the cache)."""

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        self.net = load_iris(weights)
        graphdef, state = nnx.split(self.net)
        self._state = state
        self._forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))

    def raw(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network outputs for (N, 64, 64, 3) crops in [0, 1]: contours (N, 71, 3) and irises
        (N, 5, 3) in crop pixels."""
        contour, iris = self._forward(self._state, jnp.asarray(crops, jnp.float32))
        return np.asarray(contour), np.asarray(iris)

    def eyes(self, image: np.ndarray, mesh_landmarks: np.ndarray) -> dict[str, EyeResult]:
        """Both eyes ('right', 'left': the subject's) of one face from its 468 mesh landmarks (photo
        pixels), run as one batch of two crops."""
        regions = {eye: eye_region(mesh_landmarks, eye) for eye in EYE_CORNERS}
        crops = np.stack([crop_eye(image, regions[eye], FLIPPED[eye]) for eye in EYE_CORNERS])
        contours, irises = self.raw(crops)
        out = {}
        for k, eye in enumerate(EYE_CORNERS):
            region, flip = regions[eye], FLIPPED[eye]
            out[eye] = EyeResult(
                eye_points_to_image(contours[k], region, flip),
                eye_points_to_image(irises[k], region, flip),
                region,
                flip,
            )
        return out


def read_eye_map(path: str | os.PathLike[str] = EYE_MAP_FILE) -> Mesh68Map:
    """The contours -> iBUG eye points map at ``path`` (12 rows over 2 x 71 contour points);
    WeightsFileError (one line) for a missing, corrupt or inconsistent file."""
    return read_mesh68_map(path, rows=IBUG_EYES.stop - IBUG_EYES.start, sources=2 * CONTOUR_POINTS)


@functools.cache
def default_eye_map() -> Mesh68Map:
    """The map shipped with the package (read once)."""
    return read_eye_map()


def eye_contours(eyes: dict[str, EyeResult]) -> np.ndarray:
    """(142, 3): the right eye's 71 contour points, then the left eye's (the eye map's sources)."""
    return np.concatenate([eyes["right"].contour, eyes["left"].contour])


def ibug_eyes(eyes: dict[str, EyeResult], mapping: Mesh68Map | None = None) -> np.ndarray:
    """iBUG points 36-47 (12, 2), photo pixels, from both eyes' contours (``IrisLandmarks.eyes``)
    through ``mapping`` (default: the shipped map)."""
    return (mapping or default_eye_map())(eye_contours(eyes)[:, :2])
