"""Loaders for the Basel Face Model 2009 and Deep3DFaceRecon's ``BFM_model_front.mat``.

BFM's licence forbids redistribution: users bring the files. Both loaders return a MorphableModel in
millimetres with BFM's statistical albedo (albedo_kind 'statistical') and PCA expressions.

- ``load_bfm_front(path)``: Deep3DFaceRecon's ``BFM_model_front.mat`` (decimetres, texture 0-255,
  1-based indices): ``meanshape`` (1, 3N), ``idBase`` (3N, 80), ``exBase`` (3N, 64), ``meantex``
  (1, 3N), ``texBase`` (3N, 80), ``tri`` (F, 3), ``point_buf`` (N, 8), ``keypoints`` (1, 68),
  ``skinmask`` (1, N); optional ``frontmask2_idx`` (the photometric face region) and ``tri_mask2``.
  The mean shape is re-centred on its centroid, as Deep3DFaceRecon's PyTorch code does.
- ``load_bfm09(folder)``: the original ``01_MorphableModel.mat`` (micrometres) + ``Exp_Pca.bin``
  (Guo et al.'s expression PCA) + ``std_exp.txt`` and Deng et al.'s crop files ``BFM_front_idx.mat``,
  ``BFM_exp_idx.mat`` and ``facemodel_info.mat`` (all in Deep3DFaceRecon's ``BFM/`` folder), cropped
  to the front face exactly as Deng et al.'s ``transferBFM09``: the first 80 identity and albedo and
  64 expression modes, each scaled by its standard deviation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from occface_jax.errors import ModelFileError
from occface_jax.morphable.io import model_from_fields
from occface_jax.morphable.model import MorphableModel

DM_TO_MM = 100.0
BFM_FRONT_KEYS = ("meanshape", "idBase", "exBase", "meantex", "texBase", "tri", "keypoints")
BFM09_FILES = (
    "01_MorphableModel.mat",
    "Exp_Pca.bin",
    "std_exp.txt",
    "BFM_front_idx.mat",
    "BFM_exp_idx.mat",
    "facemodel_info.mat",
)
BFM09_EXP_VERTICES = 53215


def _loadmat(path: Path) -> dict[str, np.ndarray]:
    from scipy.io import loadmat  # only BFM's .mat files need it (~1 s to import)

    if not path.is_file():
        raise ModelFileError(f"BFM file {path} does not exist")
    try:
        data = loadmat(str(path))
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5)
        raise ModelFileError(
            f"{path} is a MATLAB v7.3 file; re-save it with -v7 or scipy.io.savemat"
        ) from err
    except (ValueError, OSError, TypeError, EOFError) as err:
        raise ModelFileError(f"{path} is corrupt or not a MATLAB file ({err})") from err
    return {k: v for k, v in data.items() if not k.startswith("__")}


def _require(data: dict[str, np.ndarray], keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ModelFileError(f"{path}: missing key(s) {', '.join(missing)}")


def _one_based(arr: np.ndarray, name: str, upper: int, path: Path) -> np.ndarray:
    idx = np.asarray(arr).astype(np.int64) - 1
    if idx.size and (idx.min() < 0 or idx.max() >= upper):
        raise ModelFileError(
            f"{path}: {name} holds indices {idx.min() + 1}..{idx.max() + 1}, expected 1..{upper}"
        )
    return idx


def _front_fields(
    mean_dm: np.ndarray,
    id_dm: np.ndarray,
    exp_dm: np.ndarray,
    tex_mean255: np.ndarray,
    tex_basis255: np.ndarray,
    tri1: np.ndarray,
    keypoints1: np.ndarray,
    skin: np.ndarray | None,
    front1: np.ndarray | None,
    path: Path,
    name: str,
) -> dict[str, np.ndarray]:
    """Deep3DFaceRecon-layout arrays -> the project's fields (mm, [0, 1], 0-based), checked."""
    mean = np.asarray(mean_dm, np.float64).reshape(-1, 3)
    n = mean.shape[0]
    for key, basis in (("idBase", id_dm), ("exBase", exp_dm), ("texBase", tex_basis255)):
        if basis.ndim != 2 or basis.shape[0] != 3 * n:
            raise ModelFileError(f"{path}: {key} has shape {basis.shape}, expected ({3 * n}, K)")
    if np.asarray(tex_mean255).size != 3 * n:
        raise ModelFileError(
            f"{path}: meantex has {np.asarray(tex_mean255).size} values, want {3 * n}"
        )
    mean = mean - mean.mean(axis=0)
    tri = _one_based(tri1, "tri", n, path)
    if tri.ndim != 2 or tri.shape[1] != 3:
        raise ModelFileError(f"{path}: tri has shape {tri.shape}, expected (F, 3)")
    keypoints = _one_based(np.asarray(keypoints1).reshape(-1), "keypoints", n, path)
    if keypoints.size != 68:
        raise ModelFileError(f"{path}: keypoints has {keypoints.size} entries, expected 68")
    fields = {
        "mean_shape": (mean * DM_TO_MM).astype(np.float32),
        "id_basis": (np.asarray(id_dm, np.float64) * DM_TO_MM).astype(np.float32),
        "exp_basis": (np.asarray(exp_dm, np.float64) * DM_TO_MM).astype(np.float32),
        "albedo_mean": (np.asarray(tex_mean255, np.float64).reshape(-1, 3) / 255.0).astype(
            np.float32
        ),
        "albedo_basis": (np.asarray(tex_basis255, np.float64) / 255.0).astype(np.float32),
        "triangles": tri.astype(np.int32),
        "landmarks68": keypoints.astype(np.int32),
        "name": np.array(name),
        "exp_kind": np.array("pca"),
        "albedo_kind": np.array("statistical"),
    }
    if skin is not None:
        fields["skin_weight"] = np.asarray(skin, np.float32).reshape(-1)
    if front1 is not None:
        region = np.zeros(n, bool)
        region[_one_based(np.asarray(front1).reshape(-1), "frontmask2_idx", n, path)] = True
        fields["face_region"] = region
    return fields


def load_bfm_front(path: str | Path) -> MorphableModel:
    """Deep3DFaceRecon's ``BFM_model_front.mat`` as a MorphableModel (mm, albedo in [0, 1])."""
    path = Path(path)
    data = _loadmat(path)
    _require(data, BFM_FRONT_KEYS, path)
    fields = _front_fields(
        data["meanshape"],
        data["idBase"],
        data["exBase"],
        data["meantex"],
        data["texBase"],
        data["tri"],
        data["keypoints"],
        data.get("skinmask"),
        data.get("frontmask2_idx"),
        path,
        name=path.stem,
    )
    return model_from_fields(fields, source=str(path))


def read_exp_pca_bin(path: Path, n_vertices: int = BFM09_EXP_VERTICES) -> np.ndarray:
    """Guo et al.'s ``Exp_Pca.bin``: int32 K, float32 mean (3n), float32 modes (K, 3n) -> (3n, K)."""
    if not path.is_file():
        raise ModelFileError(f"BFM file {path} does not exist")
    raw = path.read_bytes()
    if len(raw) < 4:
        raise ModelFileError(f"{path} is truncated (size {len(raw)} bytes)")
    k = int(np.frombuffer(raw[:4], np.int32)[0])
    expected = 4 + 4 * 3 * n_vertices * (1 + k)
    if k <= 0 or len(raw) != expected:
        raise ModelFileError(
            f"{path}: {len(raw)} bytes, expected {expected} for {k} modes of {n_vertices} vertices"
        )
    modes = np.frombuffer(raw, np.float32, offset=4 + 4 * 3 * n_vertices)
    return modes.reshape(k, 3 * n_vertices).T


def load_bfm09(
    folder: str | Path, n_id: int = 80, n_exp: int = 64, n_tex: int = 80
) -> MorphableModel:
    """BFM09 + Guo et al.'s expressions, cropped to Deng et al.'s front face (see module docstring)."""
    folder = Path(folder)
    missing = [f for f in BFM09_FILES if not (folder / f).is_file()]
    if missing:
        raise ModelFileError(
            f"{folder} lacks {', '.join(missing)} (BFM09 from faces.dmi.unibas.ch; the others from "
            "Deep3DFaceRecon's BFM/ folder)"
        )
    bfm_path = folder / "01_MorphableModel.mat"
    bfm = _loadmat(bfm_path)
    _require(bfm, ("shapeMU", "shapePC", "shapeEV", "texMU", "texPC", "texEV"), bfm_path)
    front_idx = _loadmat(folder / "BFM_front_idx.mat")
    exp_idx = _loadmat(folder / "BFM_exp_idx.mat")
    info_path = folder / "facemodel_info.mat"
    info = _loadmat(info_path)
    _require(front_idx, ("idx",), folder / "BFM_front_idx.mat")
    _require(exp_idx, ("trimIndex",), folder / "BFM_exp_idx.mat")
    _require(info, ("tri", "keypoints", "skinmask"), info_path)

    n_full = np.asarray(bfm["shapeMU"]).size // 3
    trim = _one_based(exp_idx["trimIndex"].reshape(-1), "trimIndex", n_full, folder)
    exp_modes = read_exp_pca_bin(folder / "Exp_Pca.bin", n_vertices=trim.size)
    try:
        exp_std = np.loadtxt(folder / "std_exp.txt").reshape(-1)
    except ValueError as err:
        raise ModelFileError(f"{folder / 'std_exp.txt'} is not a list of numbers ({err})") from err
    if exp_std.size != exp_modes.shape[1]:
        raise ModelFileError(
            f"std_exp.txt has {exp_std.size} values, Exp_Pca.bin {exp_modes.shape[1]} modes"
        )
    index_exp = _one_based(front_idx["idx"].reshape(-1), "idx", trim.size, folder)
    index_shape = trim[index_exp]

    def crop(basis: np.ndarray, rows: np.ndarray) -> np.ndarray:
        k = basis.shape[1]
        return basis.reshape(-1, 3, k)[rows].reshape(-1, k)

    shape_pc = np.asarray(bfm["shapePC"], np.float64)[:, :n_id] * bfm["shapeEV"].reshape(-1)[:n_id]
    tex_pc = np.asarray(bfm["texPC"], np.float64)[:, :n_tex] * bfm["texEV"].reshape(-1)[:n_tex]
    exp_pc = exp_modes[:, :n_exp].astype(np.float64) * exp_std[:n_exp]
    um_to_dm = 1e-5
    fields = _front_fields(
        np.asarray(bfm["shapeMU"], np.float64).reshape(-1, 3)[index_shape] * um_to_dm,
        crop(shape_pc, index_shape) * um_to_dm,
        crop(exp_pc, index_exp) * um_to_dm,
        np.asarray(bfm["texMU"], np.float64).reshape(-1, 3)[index_shape],
        crop(tex_pc, index_shape),
        info["tri"],
        info["keypoints"],
        info["skinmask"],
        info.get("frontmask2_idx"),
        info_path,
        name="bfm09_front",
    )
    return model_from_fields(fields, source=str(folder))
