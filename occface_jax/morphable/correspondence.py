"""Dense correspondences between MediaPipe's 468 face-mesh points and a morphable model's surface.

Point i of the face mesh corresponds to the surface point ``barycentric[i] @ shape[vertices[i]]``
(three vertex ids of one triangle and barycentric weights summing to 1), whatever the identity,
expression and pose. ``weight[i]`` in (0, 1] is the point's weight in a landmark term (inverse
residual variance relative to the median point, clipped to [0.1, 1]); ``residual_px[i]`` the RMS
distance, in pixels of Deng et al.'s 224 crop, between the face mesh's point and the projected
correspondence on the faces it was derived from.

The file for the default model is derived from the model itself by ``tools/fit_dense468.py``
(synthetic faces rendered with known vertices, the face mesh run on them; its docstring has the
recipe) and ships in the package (``morphable/data/``). One file serves the full model and its
``face_only()`` crop: it holds the vertex ids in both indexings.

iBUG-68 vertices (``load_ibug68``): the vertices where the 68 points lie on the model as people,
and the detectors trained on their annotations, mark them, for the inner points 17-67 (brows,
nose, eyes, lips); a model's own ``landmarks68`` can follow another convention (ICT-FaceKit's brow
points sit about 8 mm above the brows iBUG annotators mark). Derived from annotated photos by
``tools/fit_ibug68.py`` (its docstring has the recipe); the fit uses them with ``--set
landmark_vertices=ibug`` (the default).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.errors import ModelFileError

N_POINTS = 468
FORMAT = 1
DATA_DIR = Path(__file__).parent / "data"
DEFAULT_FILES = {"ict_face_default": DATA_DIR / "mediapipe468_ict_face.npz"}
IBUG68_FILES = {"ict_face_default": DATA_DIR / "ibug68_ict_face.npz"}


class SurfacePoints(NamedTuple):
    """Surface points of a model as jit arguments: vertices (P, 3) int32 (one triangle each),
    barycentric (P, 3) float32, outward (P,) float32 +1/-1, the sign that turns the triangle's
    winding normal outwards."""

    vertices: jax.Array
    barycentric: jax.Array
    outward: jax.Array


@dataclasses.dataclass(frozen=True)
class DenseCorrespondence:
    """(468, 3) int32 vertex ids (one triangle per point), (468, 3) float32 barycentric weights,
    (468,) float32 per-point weights, the model's name and (468,) RMS residuals (px at 224)."""

    vertices: np.ndarray
    barycentric: np.ndarray
    weight: np.ndarray
    model_name: str = ""
    residual_px: np.ndarray | None = None

    def surface_points(self, model) -> SurfacePoints:
        """The points on ``model`` (the one this was loaded for), with outward normal signs taken
        on its mean shape (away from a point 80 mm behind the face's centre, model frame z
        towards the viewer)."""
        shape = np.asarray(model.mean_shape, np.float64)
        a, b, c = (shape[self.vertices[:, k]] for k in range(3))
        normal = np.cross(b - a, c - a)
        centre = shape.mean(0) - np.array([0.0, 0.0, 80.0])
        outward = np.where(np.sum(normal * ((a + b + c) / 3 - centre), 1) < 0, -1.0, 1.0)
        return SurfacePoints(
            jnp.asarray(self.vertices, jnp.int32),
            jnp.asarray(self.barycentric, jnp.float32),
            jnp.asarray(outward, jnp.float32),
        )


def base_name(name: str) -> str:
    """A model's name without the ``[face]`` suffix of ``face_only()``."""
    return name.removesuffix("[face]")


def face_only_index(full) -> np.ndarray:
    """(N_full,) int64: each full-model vertex's id in ``full.face_only()``, -1 if dropped (the
    same rule as ``MorphableModel.face_only``)."""
    keep = np.asarray(full.face_region, bool).copy()
    keep[np.asarray(full.landmarks68)] = True
    index = np.full(len(keep), -1, np.int64)
    index[keep] = np.arange(int(keep.sum()))
    return index


def _header(full, face) -> dict[str, np.ndarray]:
    """The fields every correspondence-style file starts with: format, model, vertex counts."""
    return {
        "format": np.int32(FORMAT),
        "model_name": np.array(base_name(full.name)),
        "n_vertices_full": np.int64(full.n_vertices),
        "n_vertices_face": np.int64(face.n_vertices),
    }


def save_correspondence(path: str | os.PathLike, corr: DenseCorrespondence, full, face) -> Path:
    """Write ``corr`` (full-model vertex ids) for ``full`` and its ``face`` = ``full.face_only()``."""
    face_ids = face_only_index(full)[corr.vertices]
    if np.any(face_ids < 0):
        raise ValueError("a correspondence lies outside the face-only model")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    residual = corr.residual_px if corr.residual_px is not None else np.zeros(N_POINTS)
    np.savez(
        path,
        **_header(full, face),
        vertices_full=corr.vertices.astype(np.int32),
        vertices_face=face_ids.astype(np.int32),
        barycentric=corr.barycentric.astype(np.float32),
        weight=corr.weight.astype(np.float32),
        residual_px=np.asarray(residual, np.float32),
    )
    return path


def save_ibug68(path: str | os.PathLike, vertices_full: np.ndarray, full, face, **info) -> Path:
    """Write iBUG-68 vertex ids (68,) of ``full`` (and in ``face`` = ``full.face_only()``), with
    ``info`` numbers (how they were derived)."""
    face_ids = face_only_index(full)[np.asarray(vertices_full)]
    if np.shape(vertices_full) != (68,) or np.any(face_ids < 0):
        raise ValueError("need 68 vertex ids inside the face-only model")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        **_header(full, face),
        vertices_full=np.asarray(vertices_full, np.int32),
        vertices_face=face_ids.astype(np.int32),
        **{k: np.asarray(v) for k, v in info.items()},
    )
    return path


def _model_arrays(model, path: Path, what: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A correspondence-style file's arrays and its vertex ids in ``model``'s indexing (full or
    face-only); one-line ModelFileError when unreadable or made for another model."""
    name = base_name(model.name)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise ModelFileError(f"cannot read the {what} file {path}: {err}") from None
    if int(arrays.get("format", -1)) != FORMAT or "model_name" not in arrays:
        raise ModelFileError(f"{path} is not a format-{FORMAT} {what} file")
    if str(arrays["model_name"]) != name:
        raise ModelFileError(
            f"{path} was derived for model {str(arrays['model_name'])!r}, not {name!r}"
        )
    for kind in ("full", "face"):
        if int(arrays[f"n_vertices_{kind}"]) == model.n_vertices:
            return arrays, arrays[f"vertices_{kind}"]
    raise ModelFileError(
        f"{path} fits models of {int(arrays['n_vertices_full'])} or "
        f"{int(arrays['n_vertices_face'])} vertices, not {model.n_vertices}"
    )


def load_ibug68(model, path: str | os.PathLike | None = None) -> np.ndarray | None:
    """(68,) int32 iBUG-68 vertex ids of ``model`` (full or ``face_only()``) from ``path`` or the
    package's file for the model (None when it has none); one-line ModelFileError for a file that
    is corrupt, malformed or made for another model."""
    if path is None:
        path = IBUG68_FILES.get(base_name(model.name))
        if path is None or not Path(path).is_file():
            return None
    path = Path(path)
    _, vertices = _model_arrays(model, path, "iBUG-68 vertex")
    if vertices.shape != (68,) or vertices.min() < 0 or vertices.max() >= model.n_vertices:
        raise ModelFileError(f"{path}: expected 68 vertex ids of the model")
    return vertices.astype(np.int32)


def load_correspondence(model, path: str | os.PathLike | None = None) -> DenseCorrespondence:
    """The 468-point correspondence of ``model`` (full or ``face_only()``), from ``path`` or the
    package's file for the model. One-line ModelFileError when there is none, or it is corrupt or
    made for another model."""
    name = base_name(model.name)
    if path is None:
        path = DEFAULT_FILES.get(name)
        if path is None:
            raise ModelFileError(
                f"no 468-point correspondence for model {name!r}; derive one with "
                "tools/fit_dense468.py and pass its path, or use --set landmarks=dlib68"
            )
    path = Path(path)
    arrays, vertices = _model_arrays(model, path, "correspondence")
    bary = arrays["barycentric"]
    if vertices.shape != (N_POINTS, 3) or bary.shape != (N_POINTS, 3):
        raise ModelFileError(f"{path}: expected (468, 3) vertex ids and barycentric weights")
    return DenseCorrespondence(vertices, bary, arrays["weight"], name, arrays.get("residual_px"))


def closest_surface_points(
    vertices: np.ndarray, triangles: np.ndarray, points: np.ndarray, chunk: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """For each of (P, 3) ``points``, the nearest point of the mesh (``vertices`` (N, 3),
    ``triangles`` (T, 3)): its triangle's vertex ids (P, 3) and barycentric weights (P, 3)."""
    tri = np.asarray(triangles)
    a, b, c = (np.asarray(vertices, np.float64)[tri[:, k]] for k in range(3))
    best_ids, best_bary = [], []
    for start in range(0, len(points), chunk):
        p = np.asarray(points[start : start + chunk], np.float64)[:, None]  # (C, 1, 3)
        bary = _closest_barycentric(p, a, b, c)  # (C, T, 3)
        closest = bary[..., :1] * a + bary[..., 1:2] * b + bary[..., 2:] * c
        pick = np.argmin(np.sum((closest - p) ** 2, -1), axis=1)
        best_ids.append(tri[pick])
        best_bary.append(bary[np.arange(len(pick)), pick])
    return np.concatenate(best_ids).astype(np.int32), np.concatenate(best_bary).astype(np.float32)


def _closest_barycentric(p, a, b, c) -> np.ndarray:
    """Barycentric weights of the closest point to p on each triangle (a, b, c): the plane
    projection when it falls inside, else the best of the three edges' closest points."""
    ab, ac, ap = b - a, c - a, p - a
    d00, d01, d11 = (ab * ab).sum(-1), (ab * ac).sum(-1), (ac * ac).sum(-1)
    d20, d21 = (ap * ab).sum(-1), (ap * ac).sum(-1)
    den = np.maximum(d00 * d11 - d01 * d01, 1e-18)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    inside = np.stack([1 - v - w, v, w], -1)
    candidates = [inside]
    for i, j in ((0, 1), (1, 2), (0, 2)):  # the three edges
        q0, q1 = (a, b, c)[i], (a, b, c)[j]
        edge = q1 - q0
        t = np.clip(((p - q0) * edge).sum(-1) / np.maximum((edge * edge).sum(-1), 1e-18), 0, 1)
        bary = np.zeros(inside.shape)
        bary[..., i], bary[..., j] = 1 - t, t
        candidates.append(bary)
    ok = np.all(inside >= 0, -1)
    best, best_d = inside, np.where(ok, _distance(inside, p, a, b, c), np.inf)
    for bary in candidates[1:]:
        d = _distance(bary, p, a, b, c)
        better = d < best_d
        best = np.where(better[..., None], bary, best)
        best_d = np.where(better, d, best_d)
    return best


def _distance(bary, p, a, b, c) -> np.ndarray:
    q = bary[..., :1] * a + bary[..., 1:2] * b + bary[..., 2:] * c
    return np.sum((q - p) ** 2, -1)


def dense_points(shape: jax.Array, corr_vertices: jax.Array, barycentric: jax.Array) -> jax.Array:
    """(..., 468, 3) surface points from a shape (..., N, 3) (any frame and units)."""
    corners = jnp.take(shape, jnp.asarray(corr_vertices), axis=-2)  # (..., 468, 3, 3)
    return jnp.einsum("pk,...pkd->...pd", jnp.asarray(barycentric), corners)
