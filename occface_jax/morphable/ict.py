"""Converter from the original ICT-FaceKit distribution (OBJ files + ``vertex_indices.json``).

Reproduces the conversion recorded in ``shared/models/PROVENANCE.md``: keep the stitched skin shell
and the eyeballs (17,202 vertices), fan-split quads into triangles in file order, centimetres to
millimetres, centre on the centroid of the narrow face area, identity columns ``identity_k - neutral``
(already scaled by their standard deviation, coefficients N(0, 1)), expression columns
``expression - neutral`` (blendshape deltas, weights in [0, 1]).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from occface_jax.errors import ModelFileError

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


def read_obj_polygons(path: Path) -> list[list[int]]:
    """The ``f`` polygons of an OBJ file as 0-based vertex index lists (texture indices dropped)."""
    polys = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("f "):
            polys.append([int(tok.split("/")[0]) - 1 for tok in line.split()[1:]])
    return polys


def fan_triangulate(polygons: list[list[int]]) -> np.ndarray:
    """Fan-split polygons (v0, v1, ..., vk) into (v0, vi, vi+1), keeping the polygons' order."""
    sizes = np.array([len(p) for p in polygons], np.int64)
    flat = np.array([v for p in polygons for v in p], np.int64)
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

    tris = fan_triangulate(read_obj_polygons(src / ICT_NEUTRAL))
    tris = tris[np.all(old_to_new[tris] >= 0, axis=1)]
    triangles = old_to_new[tris].astype(np.int32)

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
    }
