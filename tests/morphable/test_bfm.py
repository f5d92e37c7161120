"""BFM loaders on small files written in the published layouts, checked against Deng et al.'s formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import savemat

from occface_jax.errors import ModelFileError
from occface_jax.morphable import geometry
from occface_jax.morphable.bfm import load_bfm09, load_bfm_front
from occface_jax.morphable.synthetic import sphere_mesh


def _front_mat(rng, n_id=5, n_exp=4, n_tex=3):
    verts_mm, tris = sphere_mesh(8, 10)
    n = verts_mm.shape[0]
    return {
        "meanshape": (verts_mm.reshape(1, -1) / 100.0 + 0.3),  # dm, deliberately off-centre
        "idBase": rng.normal(size=(3 * n, n_id)) * 0.01,
        "exBase": rng.normal(size=(3 * n, n_exp)) * 0.01,
        "meantex": rng.uniform(50, 200, size=(1, 3 * n)),
        "texBase": rng.normal(size=(3 * n, n_tex)) * 10,
        "tri": tris + 1,
        "point_buf": np.ones((n, 8)),
        "keypoints": rng.choice(n, 68).reshape(1, 68) + 1,
        "skinmask": (rng.uniform(size=(1, n)) > 0.3).astype(np.float64),
        "frontmask2_idx": np.arange(1, n // 2 + 1).reshape(-1, 1),
    }


def test_bfm_front_units_indices_and_formulas(tmp_path):
    rng = np.random.default_rng(1)
    mat = _front_mat(rng)
    savemat(tmp_path / "BFM_model_front.mat", mat)
    model = load_bfm_front(tmp_path / "BFM_model_front.mat")
    n = mat["meanshape"].size // 3
    assert model.n_vertices == n and model.exp_kind == "pca" and model.albedo_kind == "statistical"
    np.testing.assert_array_equal(model.triangles, mat["tri"] - 1)
    np.testing.assert_array_equal(model.landmarks68, mat["keypoints"].ravel() - 1)
    assert model.face_region.sum() == n // 2 and model.face_region[: n // 2].all()
    # Deng et al.: S = meanshape + idBase @ a + exBase @ b (dm), re-centred; ours in mm.
    a, b, t = rng.normal(size=5), rng.normal(size=4), rng.normal(size=3)
    mean_dm = mat["meanshape"].reshape(-1, 3)
    shape_dm = (mat["meanshape"].ravel() + mat["idBase"] @ a + mat["exBase"] @ b).reshape(-1, 3)
    expected_mm = (shape_dm - mean_dm.mean(0)) * 100
    got = np.asarray(geometry.shape(model, a.astype(np.float32), b.astype(np.float32)))
    np.testing.assert_allclose(got, expected_mm, rtol=1e-4, atol=1e-3)
    expected_tex = ((mat["meantex"].ravel() + mat["texBase"] @ t) / 255).reshape(-1, 3)
    np.testing.assert_allclose(
        np.asarray(geometry.albedo(model, t.astype(np.float32))), expected_tex, atol=1e-5
    )


def test_bfm_front_errors(tmp_path):
    rng = np.random.default_rng(2)
    mat = _front_mat(rng)
    bad = dict(mat, idBase=mat["idBase"][:-1])
    savemat(tmp_path / "wrong_shape.mat", bad)
    with pytest.raises(ModelFileError, match="idBase has shape"):
        load_bfm_front(tmp_path / "wrong_shape.mat")
    savemat(tmp_path / "missing.mat", {k: v for k, v in mat.items() if k != "texBase"})
    with pytest.raises(ModelFileError, match="missing key.*texBase"):
        load_bfm_front(tmp_path / "missing.mat")
    zero_based = dict(mat, tri=mat["tri"] - 1)
    savemat(tmp_path / "zero_based.mat", zero_based)
    with pytest.raises(ModelFileError, match="tri holds indices 0"):
        load_bfm_front(tmp_path / "zero_based.mat")
    (tmp_path / "junk.mat").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelFileError, match="corrupt or not a MATLAB file"):
        load_bfm_front(tmp_path / "junk.mat")


def _write_bfm09(folder, rng, n_full=120, n_exp_vertices=100, n_front=60, k=6, k_exp=5):
    verts_mm, tris = sphere_mesh(8, 10)  # 72 vertices: the front crop keeps n_front of them
    n_front = verts_mm.shape[0]
    shape_mu = rng.normal(size=(n_full, 3)) * 50_000.0  # micrometres
    trim = rng.choice(n_full, n_exp_vertices, replace=False)  # BFM_exp_idx: 53215 of 53490
    front = rng.choice(n_exp_vertices, n_front, replace=False)  # BFM_front_idx: 35709 of 53215
    shape_mu[trim[front]] = verts_mm * 1000.0
    savemat(
        folder / "01_MorphableModel.mat",
        {
            "shapeMU": shape_mu.reshape(-1, 1),
            "shapePC": rng.normal(size=(3 * n_full, k)),
            "shapeEV": rng.uniform(1000, 5000, size=(k, 1)),
            "texMU": rng.uniform(60, 200, size=(3 * n_full, 1)),
            "texPC": rng.normal(size=(3 * n_full, k)),
            "texEV": rng.uniform(1, 10, size=(k, 1)),
        },
    )
    exp_pc = rng.normal(size=(k_exp, 3 * n_exp_vertices)).astype(np.float32)
    with open(folder / "Exp_Pca.bin", "wb") as f:
        np.array([k_exp], np.int32).tofile(f)
        rng.normal(size=3 * n_exp_vertices).astype(np.float32).tofile(f)  # expMU (unused)
        exp_pc.tofile(f)
    exp_std = rng.uniform(1000, 3000, size=k_exp)
    np.savetxt(folder / "std_exp.txt", exp_std)
    savemat(folder / "BFM_front_idx.mat", {"idx": (front + 1).reshape(-1, 1)})
    savemat(folder / "BFM_exp_idx.mat", {"trimIndex": (trim + 1).reshape(-1, 1)})
    savemat(
        folder / "facemodel_info.mat",
        {
            "tri": tris + 1,
            "keypoints": (np.arange(68) % n_front + 1).reshape(1, -1),
            "skinmask": np.ones((1, n_front)),
            "frontmask2_idx": np.arange(1, 31).reshape(-1, 1),
        },
    )
    return shape_mu, trim, front, exp_pc, exp_std


def test_bfm09_crop_follows_deng(tmp_path):
    rng = np.random.default_rng(3)
    shape_mu, trim, front, exp_pc, exp_std = _write_bfm09(tmp_path, rng)
    model = load_bfm09(tmp_path, n_id=4, n_exp=3, n_tex=4)
    from scipy.io import loadmat

    bfm = loadmat(tmp_path / "01_MorphableModel.mat")
    index_shape = trim[front]
    # Deng's transferBFM09 in dm: idBase = shapePC * shapeEV / 1e5, cropped; exBase likewise.
    id_dm = (bfm["shapePC"] * bfm["shapeEV"].ravel())[:, :4] / 1e5
    id_dm = id_dm.reshape(-1, 3, 4)[index_shape].reshape(-1, 4)
    ex_dm = (exp_pc.T.astype(np.float64) * exp_std)[:, :3] / 1e5
    ex_dm = ex_dm.reshape(-1, 3, 3)[front].reshape(-1, 3)
    np.testing.assert_allclose(model.id_basis, id_dm * 100, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.exp_basis, ex_dm * 100, rtol=1e-5, atol=1e-4)
    mean_mm = shape_mu[index_shape] / 1000.0
    np.testing.assert_allclose(model.mean_shape, mean_mm - mean_mm.mean(0), atol=1e-3)
    tex = bfm["texMU"].reshape(-1, 3)[index_shape] / 255
    np.testing.assert_allclose(model.albedo_mean, tex, atol=1e-6)
    assert model.face_region.sum() == 30


def test_bfm09_missing_and_truncated(tmp_path):
    rng = np.random.default_rng(4)
    _write_bfm09(tmp_path, rng)
    raw = (tmp_path / "Exp_Pca.bin").read_bytes()
    (tmp_path / "Exp_Pca.bin").write_bytes(raw[:-100])
    with pytest.raises(ModelFileError, match="Exp_Pca.bin: .* bytes, expected"):
        load_bfm09(tmp_path)
    (tmp_path / "std_exp.txt").unlink()
    with pytest.raises(ModelFileError, match="lacks std_exp.txt"):
        load_bfm09(tmp_path)
