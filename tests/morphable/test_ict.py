"""Converting the original ICT-FaceKit files must reproduce the shipped default model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from occface_jax.errors import ModelFileError
from occface_jax.morphable.ict import convert_ict, fan_triangulate


def test_fan_triangulation_keeps_order_and_winding():
    polys = [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11]]
    expected = [[0, 1, 2], [0, 2, 3], [4, 5, 6], [7, 8, 9], [7, 9, 10], [7, 10, 11]]
    assert fan_triangulate(polys).tolist() == expected


def test_sample_conversion_agrees_with_shipped_npz(shared_dir):
    sample = shared_dir / "models" / "ict_sample"
    converted = convert_ict(sample)
    with np.load(shared_dir / "models" / "ict_face_default.npz", allow_pickle=False) as shipped:
        for key in (
            "triangles",
            "landmarks68",
            "face_region",
            "face_region_triangles",
            "part_id",
            "source_vertex_index",
        ):
            np.testing.assert_array_equal(converted[key], shipped[key], err_msg=key)
        np.testing.assert_allclose(converted["mean_shape"], shipped["mean_shape"], atol=1e-4)
        np.testing.assert_allclose(
            converted["centre_offset_mm"], shipped["centre_offset_mm"], atol=1e-4
        )
        # The sample holds identity000/001 (the first two identity columns) and two expressions.
        np.testing.assert_allclose(converted["id_basis"], shipped["id_basis"][:, :2], atol=1e-4)
        names = list(shipped["exp_names"])
        cols = [names.index(str(e)) for e in converted["exp_names"]]
        assert sorted(str(e) for e in converted["exp_names"]) == ["jawOpen", "mouthSmile_L"]
        np.testing.assert_allclose(converted["exp_basis"], shipped["exp_basis"][:, cols], atol=1e-4)


def test_missing_and_mismatched_files(tmp_path, shared_dir):
    sample = shared_dir / "models" / "ict_sample"
    with pytest.raises(ModelFileError, match="lacks generic_neutral_mesh.obj"):
        convert_ict(tmp_path)
    for name in ("generic_neutral_mesh.obj", "vertex_indices.json"):
        shutil.copy(sample / name, tmp_path / name)
    lines = (sample / "identity000.obj").read_text().splitlines()
    first_v = next(i for i, line in enumerate(lines) if line.startswith("v "))
    del lines[first_v]  # one vertex short
    (tmp_path / "identity000.obj").write_text("\n".join(lines))
    with pytest.raises(ModelFileError, match="identity000.obj: 26718 vertices"):
        convert_ict(tmp_path, expressions=[])
