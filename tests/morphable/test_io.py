"""The model file format: loading, checks with clear errors, and a save/load round trip."""

from __future__ import annotations

import re

import numpy as np
import pytest

from occface_jax.errors import ModelFileError
from occface_jax.morphable.io import load_npz_model, read_npz, save_model


def test_default_model_loads_with_expected_sizes(default_model):
    m = default_model
    assert (m.n_vertices, m.n_triangles, m.n_id, m.n_exp) == (17202, 34332, 100, 53)
    assert m.exp_kind == "blendshape" and m.albedo_kind == "fallback"
    assert m.face_region.sum() == 6706 and m.face_triangles.shape == (13120,)
    # vertex_triangles lists exactly the triangles each vertex belongs to.
    counts = np.bincount(m.triangles.ravel(), minlength=m.n_vertices)
    assert np.array_equal((m.vertex_triangles < m.n_triangles).sum(1), counts)
    v = 1234
    listed = set(m.vertex_triangles[v][m.vertex_triangles[v] < m.n_triangles].tolist())
    assert listed == set(np.flatnonzero((m.triangles == v).any(1)).tolist())
    # Eyeballs and mouth interior are not skin; the eyeballs (ICT's two parts of 1570 vertices)
    # are the eye region, outside the face region.
    assert m.skin_weight[m.landmarks68[30]] == 1.0 and 0 < m.skin_weight.mean() < 1
    assert m.eye_region.sum() == 2 * 1570
    assert not (m.eye_region & m.face_region).any() and (m.skin_weight[m.eye_region] == 0).all()


def _fields(toy_model):
    m = toy_model.to_numpy()
    return {
        "mean_shape": m.mean_shape,
        "id_basis": m.id_basis,
        "exp_basis": m.exp_basis,
        "triangles": m.triangles,
        "landmarks68": m.landmarks68,
    }


def _write(path, fields):
    np.savez(path, **fields)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.pop("exp_basis"), "missing key(s) exp_basis"),
        (lambda f: f.update(id_basis=f["id_basis"][:-3]), "id_basis has shape"),
        (lambda f: f.update(mean_shape=f["mean_shape"][:, :2]), "mean_shape has shape"),
        (lambda f: f["mean_shape"].__setitem__((3, 1), np.nan), "non-finite"),
        (lambda f: f["triangles"].__setitem__((0, 0), 10_000), "triangles index vertices"),
        (lambda f: f.update(landmarks68=f["landmarks68"][:60]), "landmarks68 has shape"),
        (lambda f: f.update(units=np.array("cm")), "units are 'cm'"),
        (lambda f: f.update(albedo_mean=np.zeros((5, 3), np.float32)), "albedo_mean"),
        (lambda f: f.update(eye_region=np.zeros(5, bool)), "eye_region has shape"),
    ],
)
def test_bad_fields_are_named(tmp_path, toy_model, change, message):
    fields = {k: np.array(v) for k, v in _fields(toy_model).items()}
    change(fields)
    path = _write(tmp_path / "bad.npz", fields)
    with pytest.raises(ModelFileError, match=re.escape(message)):
        load_npz_model(path)


def test_truncated_and_foreign_files_are_clear_errors(tmp_path, toy_model):
    good = _write(tmp_path / "good.npz", _fields(toy_model))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="corrupt or not an npz"):
        load_npz_model(truncated)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="corrupt or not an npz"):
        load_npz_model(text)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_npz_model(tmp_path / "absent.npz")


def test_pickled_object_arrays_are_refused(tmp_path, toy_model):
    fields = _fields(toy_model)
    fields["name"] = np.array([{"evil": 1}], dtype=object)
    path = tmp_path / "pickled.npz"
    np.savez(path, **fields)
    with pytest.raises(ModelFileError):
        read_npz(path)


def test_save_load_round_trip(tmp_path, toy_model):
    path = save_model(tmp_path / "m.npz", toy_model, exp_names=np.array(["a", "b", "c", "d"]))
    back = load_npz_model(path)
    for key, value in toy_model.to_numpy().arrays().items():
        np.testing.assert_array_equal(getattr(back, key), value, err_msg=key)
    assert (back.name, back.exp_kind, back.albedo_kind) == (
        toy_model.name,
        toy_model.exp_kind,
        toy_model.albedo_kind,
    )
    with np.load(path, allow_pickle=False) as data:
        assert list(data["exp_names"]) == ["a", "b", "c", "d"]


def _uv_fields(toy_model):
    from occface_jax.morphable.synthetic import triangle_atlas

    coords, tris = triangle_atlas(toy_model.n_triangles)
    return {**_fields(toy_model), "uv_coords": coords, "uv_triangles": tris}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.pop("uv_triangles"), "uv_coords and uv_triangles must come together"),
        (lambda f: f.update(uv_coords=f["uv_coords"][:, :1]), "uv_coords has shape"),
        (lambda f: f["uv_coords"].__setitem__((2, 0), 1.5), "uv_coords span 0.0"),
        (lambda f: f["uv_coords"].__setitem__((2, 1), np.nan), "uv_coords has 1 non-finite"),
        (lambda f: f.update(uv_triangles=f["uv_triangles"][:-1]), "uv_triangles has shape"),
        (lambda f: f["uv_triangles"].__setitem__((0, 0), -1), "uv_triangles index coords -1"),
        (lambda f: f.update(uv_triangles=f["uv_triangles"] * 1.0), "uv_triangles has dtype"),
        (lambda f: f.update(texture_size=np.array([0, 4])), "texture_size is [0, 4]"),
    ],
)
def test_bad_uv_fields_are_named(tmp_path, toy_model, change, message):
    fields = {k: np.array(v) for k, v in _uv_fields(toy_model).items()}
    change(fields)
    path = _write(tmp_path / "bad.npz", fields)
    with pytest.raises(ModelFileError, match=re.escape(message)):
        load_npz_model(path)


def test_uvs_round_trip(tmp_path, toy_model):
    fields = _uv_fields(toy_model)
    model = load_npz_model(_write(tmp_path / "uv.npz", {**fields, "texture_size": [32, 64]}))
    np.testing.assert_array_equal(model.uv.coords, fields["uv_coords"])
    np.testing.assert_array_equal(model.uv.triangles, fields["uv_triangles"])
    assert model.uv.texture_size == (32, 64)
    back = load_npz_model(save_model(tmp_path / "again.npz", model))
    assert back.uv == model.uv
    assert load_npz_model(_write(tmp_path / "plain.npz", _fields(toy_model))).uv is None
