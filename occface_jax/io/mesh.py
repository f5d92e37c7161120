"""Writing reconstructions out: meshes (OBJ textured or with vertex colours, PLY), coefficients,
landmarks.

Meshes are written in the model's frame and units (millimetres, x = subject's left, y = up,
z = towards the viewer), triangles counter-clockwise seen from outside; colours RGB in [0, 1].
A textured OBJ has ``vt`` lines (u right, v up, (0, 0) = the texture image's bottom-left corner)
and ``f v/vt`` faces, a ``.mtl`` beside it naming the texture PNG (``map_Kd``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from occface_jax.io.images import save_image


def format_rows(row_format: str, rows: np.ndarray) -> str:
    """``rows`` (N, K) as N lines of ``row_format`` (K %-fields), what ``np.savetxt`` writes, in
    one C-level formatting call (about 5x faster on a 60k-row mesh)."""
    rows = np.asarray(rows)
    if rows.size == 0:
        return ""
    values = rows.ravel().tolist()
    return ((row_format + "\n") * len(rows)) % tuple(values)


def write_obj(
    path: str | Path,
    vertices: np.ndarray,
    triangles: np.ndarray,
    colors: np.ndarray | None = None,
    normals: np.ndarray | None = None,
) -> Path:
    """OBJ text: ``v x y z [r g b]`` (the common vertex-colour extension), optional ``vn``, 1-based ``f``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    v = np.asarray(vertices, np.float64)
    rows = v if colors is None else np.concatenate([v, np.clip(colors, 0, 1)], axis=1)
    tri = np.asarray(triangles, np.int64) + 1
    buf = io.StringIO()
    buf.write("# occface_jax reconstruction: millimetres, y up, z towards the viewer\n")
    buf.write(format_rows("v" + " %.5f" * rows.shape[1], rows))
    if normals is not None:
        buf.write(format_rows("vn %.5f %.5f %.5f", np.asarray(normals, np.float64)))
        buf.write(format_rows("f %d//%d %d//%d %d//%d", np.repeat(tri, 2, axis=1)))
    else:
        buf.write(format_rows("f %d %d %d", tri))
    path.write_text(buf.getvalue())
    return path


def write_textured_obj(
    path: str | Path,
    vertices: np.ndarray,
    triangles: np.ndarray,
    uv_coords: np.ndarray,
    uv_triangles: np.ndarray,
    texture: np.ndarray | None,
    colors: np.ndarray | None = None,
) -> dict[str, Path]:
    """``path`` (OBJ: ``mtllib``, ``v x y z [r g b]``, ``vt u v``, ``usemtl``, ``f v/vt ...``), the
    ``.mtl`` of the same stem and ``texture.png`` (``texture`` (H, W, 3) in [0, 1], row 0 = v 1;
    ``io.images.save_image``) beside it; with ``texture`` None the caller writes that file (e.g.
    while the OBJ text is formatted). ``uv_triangles`` (F, 3) index ``uv_coords`` (U, 2) corner by
    corner of ``triangles``. Returns {"mesh_obj", "mesh_mtl", "texture"}: paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mtl = path.with_suffix(".mtl")
    png = texture_path(path)
    if texture is not None:
        save_image(png, np.asarray(texture))
    mtl.write_text(
        "# occface_jax reconstruction texture\n"
        "newmtl face\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nNs 1\nillum 1\nd 1\n"
        f"map_Kd {png.name}\n"
    )
    v = np.asarray(vertices, np.float64)
    rows = v if colors is None else np.concatenate([v, np.clip(colors, 0, 1)], axis=1)
    faces = np.stack(
        [np.asarray(triangles, np.int64) + 1, np.asarray(uv_triangles, np.int64) + 1], axis=-1
    ).reshape(-1, 6)
    buf = io.StringIO()
    buf.write("# occface_jax reconstruction: millimetres, y up, z towards the viewer\n")
    buf.write(f"mtllib {mtl.name}\n")
    buf.write(format_rows("v" + " %.5f" * rows.shape[1], rows))
    buf.write(format_rows("vt %.6f %.6f", np.asarray(uv_coords, np.float64)))
    buf.write("usemtl face\n")
    buf.write(format_rows("f %d/%d %d/%d %d/%d", faces))
    path.write_text(buf.getvalue())
    return {"mesh_obj": path, "mesh_mtl": mtl, "texture": png}


def texture_path(obj_path: str | Path) -> Path:
    """The texture PNG a textured OBJ's material names: ``texture.png`` beside it."""
    return Path(obj_path).with_name("texture.png")


def write_ply(
    path: str | Path, vertices: np.ndarray, triangles: np.ndarray, colors: np.ndarray | None = None
) -> Path:
    """Binary PLY with uint8 vertex colours (via trimesh)."""
    import trimesh  # ~3 s to import; only the PLY writer needs it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vertex_colors = None
    if colors is not None:
        vertex_colors = np.clip(np.rint(np.asarray(colors) * 255), 0, 255).astype(np.uint8)
    mesh = trimesh.Trimesh(
        vertices=np.asarray(vertices, np.float64),
        faces=np.asarray(triangles, np.int64),
        vertex_colors=vertex_colors,
        process=False,
    )
    path.write_bytes(mesh.export(file_type="ply"))
    return path


def write_coefficients(path: str | Path, coeffs: dict[str, Any], **metadata: Any) -> Path:
    """npz of the coefficient blocks (and metadata arrays/strings); loads with allow_pickle=False."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in coeffs.items()}
    arrays.update({k: np.asarray(v) for k, v in metadata.items()})
    np.savez(path, **arrays)
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """JSON with numpy arrays turned into lists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def default(obj: Any) -> Any:
        if isinstance(obj, np.ndarray | np.generic):
            return obj.tolist()
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"cannot write {type(obj).__name__} to JSON")

    path.write_text(json.dumps(data, indent=2, default=default) + "\n")
    return path
