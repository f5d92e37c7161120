"""Face-mesh weight files the project writes (a trained student's, ``tflite_layers.write_weight_npz``)
read back to the same network, and the fit config's ``mesh_weights`` names."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.errors import WeightsFileError
from occface_jax.models.face_mesh import load_face_mesh
from occface_jax.models.tflite_layers import layer_arrays, write_weight_npz


@pytest.mark.parametrize("compact", [False, True])
def test_written_weights_read_back_to_the_same_network(tmp_path, compact):
    net = load_face_mesh()
    arrays = layer_arrays(net)
    rng = np.random.default_rng(0)
    arrays = {k: v + rng.normal(0, 1e-3, v.shape).astype(np.float32) for k, v in arrays.items()}
    path = write_weight_npz(arrays, tmp_path / "w.npz", compact, provenance="{}")
    again = layer_arrays(load_face_mesh(path))
    assert again.keys() == arrays.keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(again[key], value)
    with np.load(path, allow_pickle=False) as data:
        assert str(data["provenance"]) == "{}"


def test_a_file_missing_a_layer_is_one_clear_error(tmp_path):
    arrays = layer_arrays(load_face_mesh())
    arrays.pop(sorted(arrays)[3])
    path = write_weight_npz(arrays, tmp_path / "w.npz")
    with pytest.raises(WeightsFileError, match="is missing"):
        load_face_mesh(path)
