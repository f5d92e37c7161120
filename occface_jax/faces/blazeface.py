"""Face detection with MediaPipe's BlazeFace in JAX (``occface_jax.models.blazeface``): letterboxing,
SSD anchors, box and keypoint decoding, MediaPipe's weighted non-maximum suppression, and the mapping
back to the photo.

Images: (H, W, 3) RGB, uint8 or float in [0, 1]. Returned boxes (x0, y0, x1, y1) and keypoints (x, y)
are in the project pixel convention (pixel centres at integer + 0.5, so 0 is the image's left/top
edge, as MediaPipe's normalised coordinates times the image size). ``Face.landmarks`` holds BlazeFace's
6 keypoints (6, 2), in MediaPipe's order ``KEYPOINTS``: the subject's right eye (image left), left eye,
nose tip, mouth centre, right ear tragion, left ear tragion.

MediaPipe's graph options for these models (mediapipe/modules/face_detection):
- anchors (SsdAnchorsCalculator): min_scale 0.1484375, max_scale 0.75, anchor_offset 0.5, aspect
  ratios [1.0], fixed_anchor_size true (every anchor is 1 x 1, so only centres matter); short range:
  input 128, 4 layers, strides [8, 16, 16, 16], interpolated_scale_aspect_ratio 1.0 (2 anchors per
  cell and layer; layers of equal stride share one grid: 16x16x2 + 8x8x6 = 896); full range: input
  192, 1 layer, stride 4, interpolated_scale_aspect_ratio 0.0 (48x48x1 = 2304).
- decoding (TensorsToDetectionsCalculator): reverse_output_order (x before y), x/y/w/h scale = input
  size, 6 keypoints, sigmoid scores with logits clipped to +-100, min_score_thresh 0.5 (short) or 0.6
  (full).
- suppression (NonMaxSuppressionCalculator): intersection over union, min_suppression_threshold 0.3,
  algorithm WEIGHTED: each kept face's box and keypoints are the score-weighted mean of the faces it
  suppresses (itself included), its score the highest one.
- input (ImageToTensorCalculator): keep_aspect_ratio (letterbox, zero border), range [-1, 1].
"""

from __future__ import annotations

import dataclasses
import os

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from occface_jax.faces.detect import Face, to_float_rgb
from occface_jax.faces.errors import NoFaceFoundError
from occface_jax.models.blazeface import NUM_KEYPOINTS, load_blazeface

KEYPOINTS = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth_center",
    "right_ear_tragion",
    "left_ear_tragion",
)


@dataclasses.dataclass(frozen=True)
class AnchorOptions:
    """The SsdAnchorsCalculator options MediaPipe uses for BlazeFace (fixed-size anchors only)."""

    input_size: int
    strides: tuple[int, ...]
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    anchor_offset: float = 0.5


@dataclasses.dataclass(frozen=True)
class DetectorOptions:
    """Anchors, decoding scale and thresholds of one BlazeFace model."""

    anchors: AnchorOptions
    min_score: float
    nms_threshold: float = 0.3


OPTIONS = {
    "short": DetectorOptions(
        AnchorOptions(128, (8, 16, 16, 16), interpolated_scale_aspect_ratio=1.0), 0.5
    ),
    "full": DetectorOptions(AnchorOptions(192, (4,), interpolated_scale_aspect_ratio=0.0), 0.6),
}
SCORE_CLIP = 100.0


def ssd_anchor_centres(options: AnchorOptions) -> np.ndarray:
    """(A, 2) anchor centres (x, y), normalised to [0, 1] of the network input, in the networks'
    output order: per group of consecutive layers with equal stride, by row, column, then anchor."""
    centres = []
    strides = options.strides
    layer = 0
    while layer < len(strides):
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += len(options.aspect_ratios)
            per_cell += 1 if options.interpolated_scale_aspect_ratio > 0 else 0
            last += 1
        size = -(-options.input_size // strides[layer])  # ceil
        ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        grid = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2) + options.anchor_offset
        centres.append(np.repeat(grid / size, per_cell, axis=1).reshape(-1, 2))
        layer = last
    return np.concatenate(centres).astype(np.float32)


def decode_detections(
    regressors: jax.Array, classificators: jax.Array, anchors: jax.Array, input_size: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Raw outputs (..., A, 16), (..., A, 1) and anchor centres (A, 2) -> boxes (..., A, 4) as
    (x0, y0, x1, y1), keypoints (..., A, 6, 2) (x, y), both normalised to the network input, and
    scores (..., A) in [0, 1]. Box centre = anchor + offset / input_size, size = value / input_size
    (anchors are 1 x 1)."""
    scale = float(input_size)
    centre = anchors + regressors[..., 0:2] / scale
    half = regressors[..., 2:4] / scale / 2.0
    boxes = jnp.concatenate([centre - half, centre + half], axis=-1)
    offsets = regressors[..., 4 : 4 + 2 * NUM_KEYPOINTS].reshape(*regressors.shape[:-1], -1, 2)
    keypoints = anchors[:, None, :] + offsets / scale
    scores = jax.nn.sigmoid(jnp.clip(classificators[..., 0], -SCORE_CLIP, SCORE_CLIP))
    return boxes, keypoints, scores


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each of (K, 4) boxes."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, threshold: float = 0.3
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-maximum suppression: repeatedly take the best remaining detection
    and every remaining one overlapping it by IoU > ``threshold``; output their score-weighted mean
    box and keypoints with the best score. Returns (box (4,), keypoints (K, 2), score), best first."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while order.size:
        best = order[0]
        overlap = box_iou(boxes[best], boxes[order]) > threshold
        overlap[0] = True
        group, order = order[overlap], order[~overlap]
        weights = scores[group] / scores[group].sum()
        box = np.einsum("k,kc->c", weights, boxes[group])
        points = np.einsum("k,kpc->pc", weights, keypoints[group])
        out.append((box, points, float(scores[best])))
    return out


@dataclasses.dataclass(frozen=True)
class Letterbox:
    """How a photo sits in the square network input: input pixel = photo pixel * scale + offset
    (per axis (x, y), continuous coordinates)."""

    size: int
    scale: np.ndarray
    offset: np.ndarray

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Points (..., 2) normalised to the network input -> photo pixels."""
        return (np.asarray(points) * self.size - self.offset) / self.scale


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """The photo scaled to fit a ``size`` square (area filter when shrinking, bilinear when
    enlarging), centred on black: (size, size, 3) float32 in [-1, 1] and the placement."""
    rgb = to_float_rgb(image)
    height, width = rgb.shape[:2]
    factor = size / max(height, width)
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
    x0, y0 = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    placement = Letterbox(
        size, np.array([new_w / width, new_h / height]), np.array([x0, y0], np.float64)
    )
    return canvas * 2.0 - 1.0, placement


class BlazeFaceDetector:
    """MediaPipe's BlazeFace face detector in JAX.

    ``model``: 'short' (faces within ~2 m, 128 px input) or 'full' (~5 m, 192 px); ``min_score``:
    detection threshold (default MediaPipe's: 0.5 short, 0.6 full); ``nms_threshold``: IoU above which
    detections are merged; ``weights``: a ``.tflite`` or converted ``.npz`` (default: the cache).
    """

    def __init__(
        self,
        model: str = "short",
        min_score: float | None = None,
        nms_threshold: float | None = None,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        if model not in OPTIONS:
            raise ValueError(f"model must be one of {sorted(OPTIONS)}, got {model!r}")
        self.model, self.options = model, OPTIONS[model]
        self.min_score = self.options.min_score if min_score is None else min_score
        self.nms_threshold = self.options.nms_threshold if nms_threshold is None else nms_threshold
        self.input_size = self.options.anchors.input_size
        self.anchors = ssd_anchor_centres(self.options.anchors)
        self.net = load_blazeface(model, weights)
        graphdef, state = nnx.split(self.net)
        self._state = state
        self._forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))

    def raw(self, tensors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network outputs for (N, size, size, 3) inputs in [-1, 1]: regressors (N, A, 16),
        classificators (N, A, 1)."""
        regressors, classificators = self._forward(self._state, jnp.asarray(tensors, jnp.float32))
        return np.asarray(regressors), np.asarray(classificators)

    def detect_all(self, image: np.ndarray) -> list[Face]:
        """Every face above ``min_score`` after suppression, best score first (may be empty)."""
        tensor, placement = letterbox(image, self.input_size)
        regressors, classificators = self.raw(tensor[None])
        boxes, keypoints, scores = (
            np.asarray(a, np.float64)
            for a in decode_detections(
                jnp.asarray(regressors[0]),
                jnp.asarray(classificators[0]),
                jnp.asarray(self.anchors),
                self.input_size,
            )
        )
        keep = scores >= self.min_score
        faces = []
        for box, points, score in weighted_nms(
            boxes[keep], keypoints[keep], scores[keep], self.nms_threshold
        ):
            corners = placement.to_image(box.reshape(2, 2)).reshape(4)
            faces.append(Face(corners, score, placement.to_image(points)))
        return faces

    def detect(self, image: np.ndarray, all_faces: bool = False) -> list[Face]:
        """Faces with their 6 keypoints, largest first; only the largest unless ``all_faces``.
        Raises NoFaceFoundError when there is none."""
        faces = self.detect_all(image)
        if not faces:
            raise NoFaceFoundError(
                f"no face found by BlazeFace ({self.model} range) in a {np.shape(image)[1]}x"
                f"{np.shape(image)[0]} image; try model='full', a lower min_score, or a face crop"
            )
        faces.sort(key=lambda face: face.area, reverse=True)
        return faces if all_faces else faces[:1]


def detect_faces_blazeface(
    image: np.ndarray, all_faces: bool = False, model: str = "short"
) -> list[Face]:
    """One-shot ``BlazeFaceDetector(model).detect(image, all_faces)``."""
    return BlazeFaceDetector(model).detect(image, all_faces)
