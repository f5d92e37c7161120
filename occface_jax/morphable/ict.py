"""Converter from the original ICT-FaceKit distribution (OBJ files + ``vertex_indices.json``).

Reproduces the conversion recorded in ``shared/models/PROVENANCE.md``: keep the stitched skin shell
and the eyeballs (17,202 vertices), fan-split quads into triangles in file order, centimetres to
millimetres, centre on the centroid of the narrow face area, identity columns ``identity_k - neutral``
(already scaled by their standard deviation, coefficients N(0, 1)), expression columns
``expression - neutral`` (blendshape deltas, weights in [0, 1]).

Texture coordinates: ICT lays its UVs out as UDIM tiles; the kept parts use tile u in [0, 1) (face)
and u in [1, 2) (head, neck, sockets), while both eyeballs fill tile [0, 1) again (overlapping the
face). ``pack_ict_uvs`` makes one atlas of the two tiles side by side (u / 2, so the texture is twice
as wide as high, ``ICT_TEXTURE_SIZE``) and shrinks each eyeball's unit square into free space of the
second tile (``ICT_EYEBALL_BOXES``). Corners are fan-split exactly as the positions, so
``uv_triangles[f]`` belongs to ``triangles[f]``. The shared default npz predates UVs:
``attach_uvs`` adds them at load time from ICT's neutral OBJ when one lies beside it (about 0.2 s of
parsing, no cache), after checking that the OBJ's triangles are the model's.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from occface_jax.errors import ModelFileError
from occface_jax.morphable.model import MorphableModel, UVMap
from occface_jax.paths import cache_dir, shared_dir

#: Original ICT vertex ranges kept (0-based, end exclusive), in this order; names become part_names.
ICT_PARTS: tuple[tuple[str, int, int], ...] = (
    ("face", 0, 9409),
    ("head_neck", 9409, 11248),
    ("mouth_socket", 11248, 13294),
    ("eye_socket_left", 13294, 13678),
    ("eye_socket_right", 13678, 14062),
    ("eyeball_left", 21451, 23021),
    ("eyeball_right", 23021, 24591),
)
#: ICT's "narrow face area": original vertices [0, 6706).
ICT_FACE_AREA_END = 6706
ICT_NEUTRAL = "generic_neutral_mesh.obj"
ICT_INDICES = "vertex_indices.json"
CM_TO_MM = 10.0
#: UDIM tiles the kept parts' UVs use (u in [0, ICT_UV_TILES), v in [0, 1]).
ICT_UV_TILES = 2
#: Where each eyeball's unit UV square goes, (u0, v0, side) in ICT tile units: free space of tile 2
#: (at least 10 texels from any other part at 1024 texels per tile; tests check this).
ICT_EYEBALL_BOXES: dict[str, tuple[float, float, float]] = {
    "eyeball_left": (1.835, 0.635, 0.13),
    "eyeball_right": (1.015, 0.515, 0.13),
}
#: (height, width) of the packed atlas: 1024 texels per tile.
ICT_TEXTURE_SIZE = (1024, 2048)


def read_obj_vertices(path: Path) -> np.ndarray:
    """The ``v`` positions (V, 3) float64 of an OBJ file."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ModelFileError(f"cannot read OBJ file {path}: {err}") from err
    rows = [line[2:] for line in text.splitlines() if line.startswith("v ")]
    try:
        values = np.array(" ".join(rows).split(), np.float64)
        return values.reshape(len(rows), -1)[:, :3]
    except ValueError as err:
        raise ModelFileError(f"{path}: malformed vertex lines ({err})") from err


@dataclasses.dataclass(frozen=True)
class ObjFaces:
    """The ``f`` records of an OBJ file, flattened: polygon p has ``sizes[p]`` corners.

    vertex: (sum(sizes),) 0-based ``v`` indices. texcoord: the same for ``vt``, or None when some
    corner has none. n_vertices: number of ``v`` lines. texcoords: (T, 2) ``vt`` (u, v), as stored.
    """

    sizes: np.ndarray
    vertex: np.ndarray
    texcoord: np.ndarray | None
    n_vertices: int
    texcoords: np.ndarray


def read_obj_faces(path: Path) -> ObjFaces:
    """Parse the ``v`` count, ``vt`` lines and ``f`` corners of an OBJ file (regex + numpy, ~0.1 s
    for ICT's 26k-vertex mesh). Faces whose corners all read ``v/vt`` (OBJ requires one form per
    face) take a vectorised path; other forms (``v``, ``v//vn``, mixed) a per-corner one."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ModelFileError(f"cannot read OBJ file {path}: {err}") from err
    n_vertices = len(re.findall(r"^v\s", text, re.M))
    vt_rows = re.findall(r"^vt[ \t]+(\S+)[ \t]+(\S+)", text, re.M)
    polys = re.findall(r"^f[ \t]+(.*\S)", text, re.M)
    sizes = np.array([len(p.split()) for p in polys], np.int64)
    slashes = np.array([p.count("/") for p in polys], np.int64)
    try:
        texcoords = np.array(vt_rows, np.float64).reshape(len(vt_rows), 2)
        if np.array_equal(slashes, sizes) and "//" not in text:  # every corner is v/vt
            both = np.array(" ".join(polys).replace("/", " ").split(), np.int64) - 1
            vertex, texcoord = both.reshape(-1, 2).T
        else:
            corners = [tok.split("/") for poly in polys for tok in poly.split()]
            vertex = np.array([c[0] for c in corners], np.int64) - 1
            has_vt = all(len(c) > 1 and c[1] for c in corners)
            texcoord = np.array([c[1] for c in corners], np.int64) - 1 if has_vt else None
    except ValueError as err:
        raise ModelFileError(f"{path}: malformed vt or f lines ({err})") from err
    for name, index, count in (("v", vertex, n_vertices), ("vt", texcoord, len(vt_rows))):
        if index is not None and index.size and (index.min() < 0 or index.max() >= count):
            raise ModelFileError(
                f"{path}: face {name} indices span {index.min() + 1}..{index.max() + 1} but the "
                f"file has {count} {name} lines (relative indices are not supported)"
            )
    return ObjFaces(sizes, vertex, texcoord, n_vertices, texcoords)


def fan_triangulate(polygons: list[list[int]]) -> np.ndarray:
    """Fan-split polygons (v0, v1, ..., vk) into (v0, vi, vi+1), keeping the polygons' order."""
    sizes = np.array([len(p) for p in polygons], np.int64)
    flat = np.array([v for p in polygons for v in p], np.int64)
    return fan_triangulate_flat(flat, sizes)


def fan_triangulate_flat(flat: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``fan_triangulate`` of polygons given flat: corners (sum(sizes),) and sizes (P,)."""
    flat = np.asarray(flat, np.int64)
    sizes = np.asarray(sizes, np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    n_tris = np.maximum(sizes - 2, 0)
    owner = np.repeat(np.arange(sizes.size), n_tris)
    corner = np.arange(owner.size) - np.repeat(np.cumsum(n_tris) - n_tris, n_tris)
    first = starts[owner]
    return np.stack([flat[first], flat[first + corner + 1], flat[first + corner + 2]], axis=1)


def kept_vertex_ids() -> tuple[np.ndarray, np.ndarray]:
    """(original ids of the kept vertices, part id of each) for the ICT_PARTS ranges."""
    ids = np.concatenate([np.arange(a, b) for _, a, b in ICT_PARTS])
    parts = np.concatenate([np.full(b - a, i, np.int8) for i, (_, a, b) in enumerate(ICT_PARTS)])
    return ids, parts


def pack_ict_uvs(
    texcoords: np.ndarray, uv_triangles: np.ndarray, box: np.ndarray, source: str = "ICT UVs"
) -> tuple[np.ndarray, np.ndarray]:
    """One [0, 1] atlas from ICT's two UDIM tiles: (coords (U, 2) float32, triangles (F, 3) int32).

    ``texcoords`` (T, 2) are ICT's ``vt``; ``uv_triangles`` (F, 3) index them; ``box`` (F,) is 0 for
    a triangle kept in place (u / 2) or k for the k-th entry of ``ICT_EYEBALL_BOXES`` (its unit
    square shrunk into that box). Coords are deduplicated per (vt, box) pair.
    """
    boxes = np.array([(0.0, 0.0, 1.0), *ICT_EYEBALL_BOXES.values()], np.float64)
    tris = np.asarray(uv_triangles, np.int64)
    box = np.broadcast_to(np.asarray(box, np.int64)[:, None], tris.shape)
    in_place = np.asarray(texcoords, np.float64)[tris[box == 0]]
    if in_place.size and (
        in_place[:, 0].min() < 0
        or in_place[:, 0].max() > ICT_UV_TILES
        or in_place[:, 1].min() < 0
        or in_place[:, 1].max() > 1
    ):
        raise ModelFileError(
            f"{source}: UVs span u {in_place[:, 0].min():.3f}..{in_place[:, 0].max():.3f}, v "
            f"{in_place[:, 1].min():.3f}..{in_place[:, 1].max():.3f}; expected ICT's first "
            f"{ICT_UV_TILES} UDIM tiles (u in [0, {ICT_UV_TILES}], v in [0, 1])"
        )
    keys, inverse = np.unique(tris * len(boxes) + box, return_inverse=True)
    vt, k = keys // len(boxes), keys % len(boxes)
    u0, v0, side = boxes[k].T
    uv = np.asarray(texcoords, np.float64)[vt]
    moved = k > 0
    uv[moved] = np.clip(uv[moved], 0, 1)
    coords = np.stack([(u0 + uv[:, 0] * side) / ICT_UV_TILES, v0 + uv[:, 1] * side], axis=1)
    return coords.astype(np.float32), inverse.reshape(tris.shape).astype(np.int32)


def ict_uv_fields(
    obj_path: str | Path,
    source_vertex_index: np.ndarray,
    triangles: np.ndarray | None = None,
    faces: ObjFaces | None = None,
) -> dict[str, np.ndarray]:
    """``uv_coords``, ``uv_triangles`` and ``texture_size`` for a model cut from ICT's neutral OBJ.

    ``source_vertex_index`` (N,) maps model vertices to ICT vertices. The OBJ's polygons over those
    vertices are fan-split in file order (as the converter does); when ``triangles`` (F, 3) is given
    they must be exactly the model's triangles, else ModelFileError says which differ.
    """
    obj_path = Path(obj_path)
    faces = faces or read_obj_faces(obj_path)
    if faces.texcoord is None:
        raise ModelFileError(f"{obj_path}: some face corners have no texture coordinate (vt)")
    svi = np.asarray(source_vertex_index, np.int64)
    if svi.max() >= faces.n_vertices:
        raise ModelFileError(
            f"{obj_path}: the model's source_vertex_index reaches {svi.max()} but the OBJ has "
            f"{faces.n_vertices} vertices"
        )
    old_to_new = np.full(faces.n_vertices, -1, np.int64)
    old_to_new[svi] = np.arange(svi.size)
    source_tris = fan_triangulate_flat(faces.vertex, faces.sizes)
    keep = np.all(old_to_new[source_tris] >= 0, axis=1)
    source_tris = source_tris[keep]
    if triangles is not None:
        tris = np.asarray(triangles, np.int64)
        if source_tris.shape != tris.shape:
            raise ModelFileError(
                f"{obj_path}: its polygons over the model's {svi.size} source vertices fan-split "
                f"into {source_tris.shape[0]} triangles, the model has {tris.shape[0]}"
            )
        differ = np.flatnonzero(np.any(old_to_new[source_tris] != tris, axis=1))
        if differ.size:
            k = int(differ[0])
            raise ModelFileError(
                f"{obj_path}: {differ.size} of {tris.shape[0]} triangles differ from the model's; "
                f"first, triangle {k}: the model's has ICT vertices {svi[tris[k]].tolist()}, the "
                f"OBJ's {source_tris[k].tolist()}"
            )
    uv_tris = fan_triangulate_flat(faces.texcoord, faces.sizes)[keep]
    box = np.zeros(source_tris.shape[0], np.int64)
    ranges = {name: (a, b) for name, a, b in ICT_PARTS}
    for k, name in enumerate(ICT_EYEBALL_BOXES, start=1):
        a, b = ranges[name]
        box[(source_tris[:, 0] >= a) & (source_tris[:, 0] < b)] = k
    coords, uv_tris = pack_ict_uvs(faces.texcoords, uv_tris, box, str(obj_path))
    return {
        "uv_coords": coords,
        "uv_triangles": uv_tris,
        "texture_size": np.array(ICT_TEXTURE_SIZE, np.int32),
    }


def neutral_obj_candidates(model_path: str | Path) -> list[Path]:
    """Where ICT's neutral OBJ may lie for a model file: beside it (``ict_sample/``,
    ``ict_sources/``), in the shared models' ``ict_sample/``, in the cache's fetched sources."""
    parent = Path(model_path).parent
    folders = [parent / "ict_sample", parent / "ict_sources"]
    shared = shared_dir()
    if shared is not None:
        folders.append(shared / "models" / "ict_sample")
    folders.append(cache_dir(create=False) / "models" / "ict_sources")
    return [f / ICT_NEUTRAL for f in folders]


def attach_uvs(model: MorphableModel, model_path: str | Path) -> MorphableModel:
    """``model`` with ICT's texture coordinates when it lacks UVs, its file records
    ``source_vertex_index`` and ICT's neutral OBJ is found (``neutral_obj_candidates``); otherwise
    ``model`` unchanged. A mismatch (another topology or triangle order) warns and keeps the
    model as it is, with vertex colours only."""
    if model.uv is not None:
        return model
    try:
        with np.load(model_path, allow_pickle=False) as data:
            if "source_vertex_index" not in data.files:
                return model
            svi = data["source_vertex_index"]
    except (OSError, ValueError):
        return model
    obj = next((c for c in neutral_obj_candidates(model_path) if c.is_file()), None)
    if obj is None:
        return model
    try:
        if svi.shape != (model.n_vertices,):
            raise ModelFileError(
                f"source_vertex_index has shape {svi.shape}, the model {model.n_vertices} vertices"
            )
        fields = ict_uv_fields(obj, svi, np.asarray(model.triangles))
    except ModelFileError as err:
        warnings.warn(
            f"no texture coordinates for {model_path}: {err}; meshes get vertex colours only",
            UserWarning,
            stacklevel=2,
        )
        return model
    size = tuple(int(x) for x in fields["texture_size"])
    return model.replace(uv=UVMap(fields["uv_coords"], fields["uv_triangles"], size))


def convert_ict(
    source_dir: str | Path,
    identities: Sequence[str] | None = None,
    expressions: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Convert an ICT-FaceKit ``FaceXModel`` folder to the project's npz fields (a dict of arrays).

    ``identities``: OBJ stems such as ``identity000`` (default: every ``identity*.obj`` present, sorted).
    ``expressions``: blendshape names (default: ``vertex_indices.json["expressions"]`` that are present).
    Raises ModelFileError naming the missing file or the mismatch.
    """
    src = Path(source_dir)
    for required in (ICT_NEUTRAL, ICT_INDICES):
        if not (src / required).is_file():
            raise ModelFileError(f"ICT-FaceKit folder {src} lacks {required}")
    try:
        indices = json.loads((src / ICT_INDICES).read_text())
        landmark_src = np.asarray(indices["idx_to_landmark_verts"], np.int64)
        all_expressions = list(indices["expressions"])
    except (ValueError, KeyError) as err:
        raise ModelFileError(f"{src / ICT_INDICES}: not ICT's vertex_indices.json ({err})") from err
    if identities is None:
        identities = sorted(p.stem for p in src.glob("identity*.obj"))
    if expressions is None:
        expressions = [e for e in all_expressions if (src / f"{e}.obj").is_file()]

    neutral = read_obj_vertices(src / ICT_NEUTRAL)
    keep, part_id = kept_vertex_ids()
    if neutral.shape[0] <= keep.max():
        raise ModelFileError(
            f"{src / ICT_NEUTRAL}: {neutral.shape[0]} vertices, expected at least {keep.max() + 1}"
        )
    old_to_new = np.full(neutral.shape[0], -1, np.int64)
    old_to_new[keep] = np.arange(keep.size)

    faces = read_obj_faces(src / ICT_NEUTRAL)
    tris = fan_triangulate_flat(faces.vertex, faces.sizes)
    tris = tris[np.all(old_to_new[tris] >= 0, axis=1)]
    triangles = old_to_new[tris].astype(np.int32)
    uv_fields = {}
    if faces.texcoord is not None:
        uv_fields = ict_uv_fields(src / ICT_NEUTRAL, keep, faces=faces)

    face_region = keep < ICT_FACE_AREA_END
    mean = neutral[keep] * CM_TO_MM
    centre = mean[face_region].mean(axis=0)

    def deltas(names: Sequence[str]) -> np.ndarray:
        cols = []
        for name in names:
            if progress is not None:
                progress(name)
            verts = read_obj_vertices(src / f"{name}.obj")
            if verts.shape != neutral.shape:
                raise ModelFileError(
                    f"{src / name}.obj: {verts.shape[0]} vertices, the neutral mesh has "
                    f"{neutral.shape[0]}"
                )
            cols.append(((verts[keep] - neutral[keep]) * CM_TO_MM).reshape(-1))
        return (
            np.stack(cols, axis=1).astype(np.float32)
            if cols
            else np.zeros((3 * keep.size, 0), np.float32)
        )

    landmarks = old_to_new[landmark_src]
    if (landmarks < 0).any():
        raise ModelFileError("ICT landmark vertices fall outside the kept vertex subset")
    face_triangles = np.flatnonzero(np.all(face_region[triangles], axis=1)).astype(np.int32)
    return {
        "mean_shape": (mean - centre).astype(np.float32),
        "id_basis": deltas(identities),
        "exp_basis": deltas(expressions),
        "triangles": triangles,
        "landmarks68": landmarks.astype(np.int32),
        "face_region": face_region,
        "face_region_triangles": face_triangles,
        "part_id": part_id,
        "part_names": np.array([name for name, _, _ in ICT_PARTS]),
        "exp_names": np.array(list(expressions), dtype="<U32"),
        "source_vertex_index": keep.astype(np.int32),
        "centre_offset_mm": centre.astype(np.float32),
        "units": np.array("mm"),
        "exp_kind": np.array("blendshape"),
        "name": np.array("ict_face"),
        "source": np.array("ICT-VGL/ICT-FaceKit FaceXModel (ICT Face Model Light), MIT License"),
        **uv_fields,
    }
