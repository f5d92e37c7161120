"""The style-loss feature extractors: VGG-19 against a numpy reference of its first layers on random
weights in torchvision's layout, its weight-file errors, and the face-ID extractor's shapes and
gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from occface_jax.errors import WeightsFileError
from occface_jax.models import feature_extractors as fx

SMALL_BLOCKS = ((4, 4), (6, 6), (8, 8, 8, 8), (8, 8, 8, 8), (8, 8, 8, 8))


def _torchvision_arrays(blocks, rng) -> dict[str, np.ndarray]:
    """Random weights under torchvision's ``features.<i>.weight`` (OIHW) / ``.bias`` names."""
    arrays, c_in = {}, 3
    widths = [c for block in blocks for c in block]
    for (_, index), c_out in zip(fx.vgg19_conv_names(blocks), widths, strict=True):
        scale = np.sqrt(2.0 / (9 * c_in))
        arrays[f"features.{index}.weight"] = (rng.normal(size=(c_out, c_in, 3, 3)) * scale).astype(
            np.float32
        )
        arrays[f"features.{index}.bias"] = rng.normal(0, 0.1, c_out).astype(np.float32)
        c_in = c_out
    return arrays


def _np_conv_relu(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """relu(cross-correlation, zero padding 1) in NHWC with a torch OIHW kernel, as a sum of 9 shifts."""
    b, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((b, h, w, weight.shape[0])) + bias
    for dy in range(3):
        for dx in range(3):
            out += padded[:, dy : dy + h, dx : dx + w, :] @ weight[:, :, dy, dx].T
    return np.maximum(out, 0.0)


def _np_max_pool(x: np.ndarray) -> np.ndarray:
    b, h, w, c = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def test_torchvision_indices_of_the_vgg19_convs():
    names = fx.vgg19_conv_names()
    assert len(names) == 16
    # torchvision's vgg19().features: conv at these indices, relu after each, pools at 4, 9, 18, 27, 36
    assert [i for _, i in names] == [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert dict(names)["relu5_2"] == 30 and dict(names)["relu3_4"] == 16


def test_vgg19_first_layers_match_numpy_on_torchvision_layout_weights(tmp_path):
    rng = np.random.default_rng(0)
    arrays = _torchvision_arrays(SMALL_BLOCKS, rng)
    path = tmp_path / "vgg.npz"
    np.savez(path, **arrays)
    model = fx.load_vgg19(
        path, layers=("relu1_1", "relu1_2", "relu2_2"), blocks=SMALL_BLOCKS, input_size=12
    )
    images = rng.uniform(size=(2, 12, 12, 3)).astype(np.float32)
    got = [np.asarray(a) for a in model.features(jnp.asarray(images))]

    x = (images.astype(np.float64) - np.array(fx.IMAGENET_MEAN)) / np.array(fx.IMAGENET_STD)
    relu1_1 = _np_conv_relu(x, arrays["features.0.weight"], arrays["features.0.bias"])
    relu1_2 = _np_conv_relu(relu1_1, arrays["features.2.weight"], arrays["features.2.bias"])
    relu2_1 = _np_conv_relu(
        _np_max_pool(relu1_2), arrays["features.5.weight"], arrays["features.5.bias"]
    )
    relu2_2 = _np_conv_relu(relu2_1, arrays["features.7.weight"], arrays["features.7.bias"])
    assert [a.shape for a in got] == [(2, 12, 12, 4), (2, 12, 12, 4), (2, 6, 6, 6)]
    for ours, ref in zip(got, (relu1_1, relu1_2, relu2_2), strict=True):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_vgg19_resizes_and_is_differentiable_in_the_images(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "vgg.npz"
    np.savez(path, **_torchvision_arrays(SMALL_BLOCKS, rng))
    model = fx.load_vgg19(path, blocks=SMALL_BLOCKS, input_size=32)
    images = jnp.asarray(rng.uniform(size=(1, 48, 40, 3)), jnp.float32)
    shapes = [a.shape for a in jax.eval_shape(lambda im: model.features(im), images)]
    assert shapes == [(1, 16, 16, 6), (1, 8, 8, 8), (1, 4, 4, 8), (1, 2, 2, 8)]
    grad = jax.jit(jax.grad(lambda im: sum(jnp.sum(a) for a in model.features(im))))(images)
    assert grad.shape == images.shape and np.isfinite(np.asarray(grad)).all()
    assert np.abs(np.asarray(grad)).max() > 0


def test_vgg19_builder_reads_full_size_torchvision_names(tmp_path):
    rng = np.random.default_rng(2)
    arrays = _full_size_zeros()  # zeros: only names and shapes matter here
    arrays["features.34.bias"] = rng.normal(size=512).astype(np.float32)
    path = tmp_path / "vgg19_features.npz"
    np.savez_compressed(path, **arrays)
    section = ml_collections.ConfigDict(dict(name="vgg19", weights=str(path)))
    model = fx.build_feature_extractor(section)
    assert model.input_size == 224
    np.testing.assert_array_equal(np.asarray(model.convs[15].bias[...]), arrays["features.34.bias"])
    out = jax.eval_shape(
        lambda im: model.features(im), jax.ShapeDtypeStruct((2, 100, 100, 3), "f4")
    )
    # relu2_2, relu3_4, relu4_4, relu5_2 of a 224 input
    assert [o.shape for o in out] == [
        (2, 112, 112, 128),
        (2, 56, 56, 256),
        (2, 28, 28, 512),
        (2, 14, 14, 512),
    ]


def _full_size_zeros() -> dict[str, np.ndarray]:
    arrays, c_in = {}, 3
    widths = [c for block in fx.VGG19_BLOCKS for c in block]
    for (_, index), c_out in zip(fx.vgg19_conv_names(), widths, strict=True):
        arrays[f"features.{index}.weight"] = np.zeros((c_out, c_in, 3, 3), np.float32)
        arrays[f"features.{index}.bias"] = np.zeros((c_out,), np.float32)
        c_in = c_out
    return arrays


def test_vgg19_weight_file_errors_are_one_line_naming_file_and_key(tmp_path):
    rng = np.random.default_rng(3)
    arrays = _torchvision_arrays(SMALL_BLOCKS, rng)

    def load(path):
        return fx.load_vgg19(path, blocks=SMALL_BLOCKS, input_size=32)

    missing_file = tmp_path / "absent.npz"
    with pytest.raises(WeightsFileError, match="no such weight file") as err:
        load(missing_file)
    assert str(missing_file) in str(err.value) and "\n" not in str(err.value)

    lacking = tmp_path / "lacking.npz"
    np.savez(lacking, **{k: v for k, v in arrays.items() if k != "features.21.weight"})
    with pytest.raises(WeightsFileError) as err:
        load(lacking)
    assert str(lacking) in str(err.value) and "features.21.weight" in str(err.value)
    assert "relu4_2" in str(err.value) and "\n" not in str(err.value)

    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, **{**arrays, "features.2.bias": np.zeros(5, np.float32)})
    with pytest.raises(WeightsFileError) as err:
        load(wrong)
    message = str(err.value)
    assert str(wrong) in message and "features.2.bias" in message and "(5,)" in message
    assert "(4,)" in message and "\n" not in message

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(WeightsFileError, match="not a readable npz"):
        load(garbage)


def test_unknown_names_are_one_line():
    with pytest.raises(ValueError, match="unknown feature extractor 'alexnet'") as err:
        fx.build_feature_extractor(ml_collections.ConfigDict(dict(name="alexnet", weights="")))
    assert "face_id" in str(err.value) and "vgg19" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="unknown VGG-19 layers"):
        fx.VGG19Features(layers=("relu6_1",), blocks=SMALL_BLOCKS)


def test_face_id_extractor_shapes_no_resize_at_its_size_and_gradients():
    pytest.importorskip("face_recognition_models", reason="landmarks extra not installed")
    extractor = fx.build_feature_extractor(ml_collections.ConfigDict(dict(name="", weights="")))
    assert isinstance(extractor, fx.FaceIdFeatures) and extractor.input_size == 150
    rng = np.random.default_rng(4)
    images = jnp.asarray(rng.uniform(size=(2, 64, 64, 3)), jnp.float32)
    shapes = [f.shape for f in jax.eval_shape(lambda im: extractor.features(im), images)]
    assert shapes == [
        (2, 35, 35, 32),
        (2, 17, 17, 64),
        (2, 8, 8, 128),
        (2, 4, 4, 256),
        (2, 2, 2, 256),
    ]
    chips = jnp.asarray(rng.uniform(size=(1, 150, 150, 3)), jnp.float32)
    np.testing.assert_array_equal(np.asarray(fx.resize_images(chips, 150)), np.asarray(chips))

    def loss(module, im):
        return sum(jnp.mean(f**2) for f in module.features(im))

    image = images[:1]
    grad = np.asarray(jax.jit(jax.grad(lambda im: loss(extractor, im)))(image), np.float64)
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
    # against a directional finite difference of the network in float64 (its ReLU kinks need a
    # tiny step, too small for float32)
    direction = rng.normal(size=image.shape)
    with jax.enable_x64(True):
        graphdef, state = nnx.split(extractor)
        state64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), state)
        loss64 = jax.jit(lambda im: loss(nnx.merge(graphdef, state64), im))
        eps = 1e-7
        image64 = jnp.asarray(image, jnp.float64)
        fd = (loss64(image64 + eps * direction) - loss64(image64 - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(np.sum(grad * direction), float(fd), rtol=1e-3)
