"""The project's morphable-model file format (npz, loads with ``allow_pickle=False``) and its checks.

Required keys (N vertices, F triangles):
  ``mean_shape`` (N, 3) float, mm; ``id_basis`` (3N, K_id); ``exp_basis`` (3N, K_exp);
  ``triangles`` (F, 3) int, 0-based, counter-clockwise from outside; ``landmarks68`` (68,) int.
Optional keys (defaults in brackets):
  ``face_region`` (N,) bool [all]; ``face_region_triangles`` (F_face,) int [triangles inside it];
  ``albedo_mean`` (N, 3) in [0, 1] and ``albedo_basis`` (3N, K_tex) [the fallback of
  ``occface_jax.morphable.albedo``]; ``skin_weight`` (N,) [0 on parts named eyeball*/mouth*, else 1];
  ``eye_region`` (N,) bool [the parts named eyeball*, else none];
  ``part_id`` (N,) + ``part_names`` (P,); ``exp_names`` (K_exp,); string scalars ``name``, ``units``
  (must be 'mm'), ``exp_kind`` ('blendshape' | 'pca'; else guessed from ``exp_coeff_prior``),
  ``albedo_kind``, ``source``, ``format_version``.
  Texture coordinates (all or none of): ``uv_coords`` (U, 2) float in [0, 1], OpenGL/OBJ convention
  (u right, v up, (0, 0) = bottom-left of the texture image); ``uv_triangles`` (F, 3) int indices into
  ``uv_coords``, row f = the texture corners of ``triangles[f]`` in the same corner order (UV seams
  give a vertex several coords); optional ``texture_size`` (2,) int (height, width) texels the atlas
  is laid out for [1024, 1024]. Without them meshes carry vertex colours only; the ICT default gets
  them at load time from ICT's OBJ when that lies beside it (``occface_jax.morphable.ict.attach_uvs``).
The shared default ``ict_face_default.npz`` is a valid file of this format as it stands.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from occface_jax.errors import ModelFileError
from occface_jax.morphable.albedo import MOUTH_RGB, SCLERA_RGB, fallback_albedo
from occface_jax.morphable.model import MorphableModel, UVMap, build_vertex_triangles

FORMAT_VERSION = "1"
REQUIRED_KEYS = ("mean_shape", "id_basis", "exp_basis", "triangles", "landmarks68")
_STRING_KEYS = ("name", "units", "exp_kind", "albedo_kind", "source", "format_version")


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an npz file; ModelFileError for a missing, truncated or non-npz file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise ModelFileError(
            f"model file {path} is corrupt or not an npz archive ({type(err).__name__}: {err})"
        ) from err


def _string(fields: Mapping[str, Any], key: str, default: str) -> str:
    value = fields.get(key)
    return default if value is None else str(np.asarray(value).reshape(()))


def validate_fields(fields: Mapping[str, np.ndarray], source: str = "model") -> None:
    """Check keys, shapes, dtypes, finiteness and index ranges; raise ModelFileError naming the fault."""
    missing = [k for k in REQUIRED_KEYS if k not in fields]
    if missing:
        raise ModelFileError(f"{source}: missing key(s) {', '.join(missing)}")

    def fail(msg: str) -> None:
        raise ModelFileError(f"{source}: {msg}")

    mean = np.asarray(fields["mean_shape"])
    if mean.ndim != 2 or mean.shape[1] != 3 or mean.shape[0] < 3:
        fail(f"mean_shape has shape {mean.shape}, expected (N, 3) with N >= 3")
    n = mean.shape[0]
    for key in ("id_basis", "exp_basis", "albedo_basis"):
        if key not in fields:
            continue
        basis = np.asarray(fields[key])
        if basis.ndim != 2 or basis.shape[0] != 3 * n:
            fail(f"{key} has shape {basis.shape}, expected ({3 * n}, K) for {n} vertices")
    if "albedo_mean" in fields and np.asarray(fields["albedo_mean"]).shape != (n, 3):
        fail(f"albedo_mean has shape {np.asarray(fields['albedo_mean']).shape}, expected ({n}, 3)")
    if ("albedo_mean" in fields) != ("albedo_basis" in fields):
        fail("albedo_mean and albedo_basis must come together")
    for key in (
        "mean_shape",
        "id_basis",
        "exp_basis",
        "albedo_mean",
        "albedo_basis",
        "skin_weight",
    ):
        if key in fields:
            arr = np.asarray(fields[key])
            if not np.issubdtype(arr.dtype, np.number):
                fail(f"{key} has dtype {arr.dtype}, expected a float array")
            bad = int(np.size(arr) - np.isfinite(arr).sum())
            if bad:
                fail(f"{key} has {bad} non-finite value(s) (NaN or inf)")
    tris = np.asarray(fields["triangles"])
    if tris.ndim != 2 or tris.shape[1] != 3 or tris.shape[0] == 0:
        fail(f"triangles has shape {tris.shape}, expected (F, 3)")
    if not np.issubdtype(tris.dtype, np.integer):
        fail(f"triangles has dtype {tris.dtype}, expected integers")
    if tris.min() < 0 or tris.max() >= n:
        fail(f"triangles index vertices {tris.min()}..{tris.max()}, valid range is 0..{n - 1}")
    lms = np.asarray(fields["landmarks68"])
    if lms.shape != (68,) or not np.issubdtype(lms.dtype, np.integer):
        fail(f"landmarks68 has shape {lms.shape} and dtype {lms.dtype}, expected (68,) integers")
    if lms.min() < 0 or lms.max() >= n:
        fail(f"landmarks68 index vertices {lms.min()}..{lms.max()}, valid range is 0..{n - 1}")
    for key in ("face_region", "skin_weight", "eye_region", "part_id"):
        if key in fields and np.asarray(fields[key]).shape != (n,):
            fail(f"{key} has shape {np.asarray(fields[key]).shape}, expected ({n},)")
    if "face_region_triangles" in fields:
        ft = np.asarray(fields["face_region_triangles"])
        if ft.ndim != 1 or (ft.size and (ft.min() < 0 or ft.max() >= tris.shape[0])):
            fail(f"face_region_triangles must be 1-D indices into the {tris.shape[0]} triangles")
    units = _string(fields, "units", "mm")
    if units != "mm":
        fail(f"units are '{units}'; model files are in millimetres (convert at load time)")
    exp_kind = _string(fields, "exp_kind", "pca")
    if exp_kind not in ("pca", "blendshape"):
        fail(f"exp_kind '{exp_kind}' is neither 'pca' nor 'blendshape'")
    validate_uv_fields(fields, tris.shape[0], source)


UV_KEYS = ("uv_coords", "uv_triangles")


def validate_uv_fields(fields: Mapping[str, Any], n_triangles: int, source: str = "model") -> None:
    """Check the optional texture-coordinate keys against ``n_triangles``; ModelFileError if bad."""

    def fail(msg: str) -> None:
        raise ModelFileError(f"{source}: {msg}")

    present = [k for k in (*UV_KEYS, "texture_size") if k in fields]
    if not present:
        return
    if not all(k in fields for k in UV_KEYS):
        fail("uv_coords and uv_triangles must come together (texture_size is optional)")
    uv = np.asarray(fields["uv_coords"])
    if uv.ndim != 2 or uv.shape[1] != 2 or uv.shape[0] == 0:
        fail(f"uv_coords has shape {uv.shape}, expected (U, 2)")
    if not np.issubdtype(uv.dtype, np.floating):
        fail(f"uv_coords has dtype {uv.dtype}, expected floats")
    bad = int(uv.size - np.isfinite(uv).sum())
    if bad:
        fail(f"uv_coords has {bad} non-finite value(s) (NaN or inf)")
    if uv.min() < 0 or uv.max() > 1:
        fail(
            f"uv_coords span {uv.min():.4g}..{uv.max():.4g}; they must lie in [0, 1] "
            "(pack UDIM tiles into one atlas first)"
        )
    uvt = np.asarray(fields["uv_triangles"])
    if uvt.shape != (n_triangles, 3):
        fail(
            f"uv_triangles has shape {uvt.shape}, expected ({n_triangles}, 3): one row per "
            "triangle, in the order of triangles"
        )
    if not np.issubdtype(uvt.dtype, np.integer):
        fail(f"uv_triangles has dtype {uvt.dtype}, expected integers")
    if uvt.min() < 0 or uvt.max() >= uv.shape[0]:
        fail(
            f"uv_triangles index coords {uvt.min()}..{uvt.max()}, valid range is "
            f"0..{uv.shape[0] - 1}"
        )
    if "texture_size" in fields:
        size = np.asarray(fields["texture_size"])
        if size.shape != (2,) or not np.issubdtype(size.dtype, np.integer) or size.min() < 1:
            fail(f"texture_size is {size.tolist()}, expected two positive integers (height, width)")


def uv_map_from_fields(fields: Mapping[str, Any]) -> UVMap | None:
    """The UVMap of (already validated) fields, or None when they hold no texture coordinates."""
    if "uv_coords" not in fields:
        return None
    size = fields.get("texture_size", (1024, 1024))
    return UVMap(
        np.asarray(fields["uv_coords"]), np.asarray(fields["uv_triangles"]), tuple(np.asarray(size))
    )


def _parts_named(fields: Mapping[str, np.ndarray], n: int, *prefixes: str) -> np.ndarray:
    """(N,) bool: the vertices of the parts (``part_id`` / ``part_names``) whose name starts with
    one of ``prefixes``; none when the file has no parts."""
    if "part_id" not in fields or "part_names" not in fields:
        return np.zeros(n, bool)
    names = [str(s) for s in np.asarray(fields["part_names"])]
    wanted = [i for i, name in enumerate(names) if name.startswith(prefixes)]
    return np.isin(np.asarray(fields["part_id"]), wanted)


def _skin_weight(fields: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    if "skin_weight" in fields:
        return np.asarray(fields["skin_weight"], np.float32)
    return np.where(_parts_named(fields, n, "eyeball", "mouth"), 0.0, 1.0).astype(np.float32)


def _eye_region(fields: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    if "eye_region" in fields:
        return np.asarray(fields["eye_region"], bool)
    return _parts_named(fields, n, "eyeball")


def _non_skin_colours(fields: Mapping[str, np.ndarray], n: int) -> np.ndarray | None:
    if "part_id" not in fields or "part_names" not in fields:
        return None
    colours = np.full((n, 3), np.nan, np.float32)
    colours[_parts_named(fields, n, "eyeball")] = SCLERA_RGB
    colours[_parts_named(fields, n, "mouth")] = MOUTH_RGB
    return colours


def model_from_fields(fields: Mapping[str, np.ndarray], source: str = "model") -> MorphableModel:
    """Validate a dict of file fields and build a MorphableModel (numpy arrays), filling defaults."""
    validate_fields(fields, source)
    mean = np.asarray(fields["mean_shape"], np.float32)
    n = mean.shape[0]
    tris = np.asarray(fields["triangles"], np.int32)
    face_region = np.asarray(fields.get("face_region", np.ones(n, bool)), bool)
    if "face_region_triangles" in fields:
        face_tris = np.asarray(fields["face_region_triangles"], np.int32)
    else:
        face_tris = np.flatnonzero(np.all(face_region[tris], axis=1)).astype(np.int32)
    if "albedo_mean" in fields:
        albedo_mean = np.asarray(fields["albedo_mean"], np.float32)
        albedo_basis = np.asarray(fields["albedo_basis"], np.float32)
        albedo_kind = _string(fields, "albedo_kind", "statistical")
    else:
        albedo_mean, albedo_basis = fallback_albedo(mean, face_region, _non_skin_colours(fields, n))
        albedo_kind = "fallback"
    exp_kind = _string(fields, "exp_kind", "")
    if not exp_kind:
        prior = _string(fields, "exp_coeff_prior", "")
        exp_kind = "blendshape" if "blendshape" in prior else "pca"
    return MorphableModel(
        mean_shape=mean,
        id_basis=np.asarray(fields["id_basis"], np.float32),
        exp_basis=np.asarray(fields["exp_basis"], np.float32),
        albedo_mean=albedo_mean,
        albedo_basis=albedo_basis,
        triangles=tris,
        vertex_triangles=build_vertex_triangles(tris, n),
        landmarks68=np.asarray(fields["landmarks68"], np.int32),
        face_region=face_region,
        face_triangles=face_tris,
        skin_weight=_skin_weight(fields, n),
        eye_region=_eye_region(fields, n),
        name=_string(fields, "name", source),
        exp_kind=exp_kind,
        albedo_kind=albedo_kind,
        uv=uv_map_from_fields(fields),
    )


def load_npz_model(path: str | Path) -> MorphableModel:
    """Load and check a model file of the project's format."""
    path = Path(path)
    fields = read_npz(path)
    if "name" not in fields:
        fields["name"] = np.array(path.stem)
    return model_from_fields(fields, source=str(path))


def save_model(path: str | Path, model: MorphableModel, **extra: Any) -> Path:
    """Write ``model`` (plus string/array ``extra`` fields) in the project's format; returns the path."""
    m = model.to_numpy()
    fields: dict[str, Any] = {k: v for k, v in m.arrays().items() if k != "vertex_triangles"}
    fields["face_region_triangles"] = fields.pop("face_triangles")
    fields.update(
        name=np.array(m.name),
        exp_kind=np.array(m.exp_kind),
        albedo_kind=np.array(m.albedo_kind),
        units=np.array("mm"),
        format_version=np.array(FORMAT_VERSION),
    )
    if m.uv is not None:
        fields.update(
            uv_coords=m.uv.coords,
            uv_triangles=m.uv.triangles,
            texture_size=np.array(m.uv.texture_size, np.int32),
        )
    fields.update({k: np.asarray(v) for k, v in extra.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez_compressed(tmp, **fields)
    tmp.replace(path)
    return path
