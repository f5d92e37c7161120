"""The in-memory morphable model: a pytree of arrays, in millimetres, usable under jit/vmap.

Axes: x = subject's left (image right), y = up, z = towards the camera (as BFM / Deep3DFaceRecon).
Bases are flattened per vertex: rows x0, y0, z0, x1, y1, z1, ...
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import jax
import numpy as np

ArrayLike = Any

#: Array fields, in the order they are stored.
ARRAY_FIELDS = (
    "mean_shape",
    "id_basis",
    "exp_basis",
    "albedo_mean",
    "albedo_basis",
    "triangles",
    "vertex_triangles",
    "landmarks68",
    "face_region",
    "face_triangles",
    "skin_weight",
    "eye_region",
)
#: Static metadata fields (hashable, not traced).
META_FIELDS = ("name", "exp_kind", "albedo_kind", "uv")


@dataclasses.dataclass(frozen=True, eq=False)
class UVMap:
    """Texture coordinates of a model's triangles (static metadata: numpy, never traced).

    Attributes:
      coords: (U, 2) float32 in [0, 1], OpenGL/OBJ convention: u right, v up, (0, 0) is the
        bottom-left corner of the texture image (row 0 of a PNG is v = 1).
      triangles: (F, 3) int32 indices into ``coords``; row f holds the texture corners of the
        model's triangle f in the same corner order (a vertex on a UV seam has several coords).
      texture_size: (height, width) texels the atlas is laid out for (its aspect ratio matters:
        UVs stretch over the whole image).

    Equality and hash go by content (a digest), so a model carrying UVs stays a valid jit key.
    """

    coords: np.ndarray
    triangles: np.ndarray
    texture_size: tuple[int, int] = (1024, 1024)

    def __post_init__(self) -> None:
        coords = np.array(self.coords, np.float32)
        triangles = np.array(self.triangles, np.int32)
        coords.flags.writeable = triangles.flags.writeable = False
        size = (int(self.texture_size[0]), int(self.texture_size[1]))
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "triangles", triangles)
        object.__setattr__(self, "texture_size", size)
        digest = hashlib.sha1(coords.tobytes() + triangles.tobytes() + repr(size).encode())
        object.__setattr__(self, "_digest", digest.hexdigest())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UVMap) and other._digest == self._digest  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._digest)  # type: ignore[attr-defined]

    def subset(self, triangle_mask: np.ndarray) -> UVMap:
        """The map of the triangles kept by ``triangle_mask`` (F,) bool, coords compacted."""
        tris = self.triangles[np.asarray(triangle_mask, bool)]
        used, inverse = np.unique(tris, return_inverse=True)
        return UVMap(self.coords[used], inverse.reshape(tris.shape), self.texture_size)


@dataclasses.dataclass(frozen=True)
class MorphableModel:
    """A linear face model: shape = mean + id_basis @ alpha + exp_basis @ beta; albedo likewise.

    Attributes:
      mean_shape: (N, 3) float32, millimetres.
      id_basis: (3N, K_id) float32, mm per unit coefficient; prior N(0, 1).
      exp_basis: (3N, K_exp) float32; blendshape deltas (weights in [0, 1]) or PCA modes (N(0, 1)).
      albedo_mean: (N, 3) float32, RGB in [0, 1] in the images' own colour space (as Deng et al.).
      albedo_basis: (3N, K_tex) float32, per unit coefficient; prior N(0, 1).
      triangles: (F, 3) int32, counter-clockwise seen from outside.
      vertex_triangles: (N, D) int32, triangles around each vertex, padded with F (a dummy).
      landmarks68: (68,) int32 vertex ids in iBUG-68 order.
      face_region: (N,) bool, the front face.
      face_triangles: (F_face,) int32 indices into ``triangles`` lying inside the face region.
      skin_weight: (N,) float32 in [0, 1], 1 on skin (photometric and albedo-smoothness losses).
      eye_region: (N,) bool, the eyeballs: no skin, yet their visible part takes the photo's colour
        in the output texture (iris and sclera) like the face region's skin.
      name: model name. exp_kind: 'blendshape' | 'pca'. albedo_kind: 'statistical' | 'fallback'.
      uv: optional :class:`UVMap` (texture coordinates) or None (meshes get vertex colours only).
    """

    mean_shape: ArrayLike
    id_basis: ArrayLike
    exp_basis: ArrayLike
    albedo_mean: ArrayLike
    albedo_basis: ArrayLike
    triangles: ArrayLike
    vertex_triangles: ArrayLike
    landmarks68: ArrayLike
    face_region: ArrayLike
    face_triangles: ArrayLike
    skin_weight: ArrayLike
    eye_region: ArrayLike
    name: str = "unnamed"
    exp_kind: str = "pca"
    albedo_kind: str = "statistical"
    uv: UVMap | None = None

    @property
    def n_vertices(self) -> int:
        return int(self.mean_shape.shape[0])

    @property
    def n_triangles(self) -> int:
        return int(self.triangles.shape[0])

    @property
    def n_id(self) -> int:
        return int(self.id_basis.shape[1])

    @property
    def n_exp(self) -> int:
        return int(self.exp_basis.shape[1])

    @property
    def n_tex(self) -> int:
        return int(self.albedo_basis.shape[1])

    def arrays(self) -> dict[str, Any]:
        """The array fields as a dict."""
        return {k: getattr(self, k) for k in ARRAY_FIELDS}

    def replace(self, **changes: Any) -> MorphableModel:
        return dataclasses.replace(self, **changes)

    def to_numpy(self) -> MorphableModel:
        return self.replace(**{k: np.asarray(v) for k, v in self.arrays().items()})

    def to_jax(self) -> MorphableModel:
        return self.replace(**{k: jax.numpy.asarray(v) for k, v in self.arrays().items()})

    def summary(self) -> str:
        """One line: name, sizes and kinds."""
        return (
            f"{self.name}: {self.n_vertices} vertices, {self.n_triangles} triangles, "
            f"{int(np.asarray(self.face_region).sum())} face-region vertices, "
            f"id {self.n_id}, exp {self.n_exp} ({self.exp_kind}), "
            f"albedo {self.n_tex} ({self.albedo_kind})"
            + ("" if self.uv is None else f", UVs ({self.uv.coords.shape[0]} coords)")
        )

    def face_only(self) -> MorphableModel:
        """The model cropped to its face region, re-indexed (landmarks outside it are kept)."""
        m = self.to_numpy()
        keep = m.face_region.copy()
        keep[m.landmarks68] = True
        old_to_new = np.full(m.n_vertices, -1, np.int64)
        old_to_new[keep] = np.arange(keep.sum())
        tri_keep = np.all(keep[m.triangles], axis=1)
        new_tri_index = np.cumsum(tri_keep) - 1
        new_tris = old_to_new[m.triangles[tri_keep]].astype(np.int32)
        face_tris = m.face_triangles[tri_keep[m.face_triangles]]
        face_triangle_ids = new_tri_index[face_tris].astype(np.int32)
        rows = np.stack([3 * np.flatnonzero(keep) + c for c in range(3)], 1).reshape(-1)
        return self.replace(
            mean_shape=m.mean_shape[keep],
            id_basis=m.id_basis[rows],
            exp_basis=m.exp_basis[rows],
            albedo_mean=m.albedo_mean[keep],
            albedo_basis=m.albedo_basis[rows],
            triangles=new_tris,
            vertex_triangles=build_vertex_triangles(new_tris, int(keep.sum())),
            landmarks68=old_to_new[m.landmarks68].astype(np.int32),
            face_region=m.face_region[keep],
            face_triangles=face_triangle_ids,
            skin_weight=m.skin_weight[keep],
            eye_region=m.eye_region[keep],
            name=f"{self.name}[face]",
            uv=None if self.uv is None else self.uv.subset(tri_keep),
        )


jax.tree_util.register_dataclass(
    MorphableModel, data_fields=list(ARRAY_FIELDS), meta_fields=list(META_FIELDS)
)


def build_vertex_triangles(triangles: np.ndarray, n_vertices: int) -> np.ndarray:
    """(N, D) int32 table of the triangles around each vertex, padded with F; numpy, done once."""
    triangles = np.asarray(triangles)
    n_tri = triangles.shape[0]
    vert = triangles.reshape(-1)
    tri = np.repeat(np.arange(n_tri), 3)
    order = np.argsort(vert, kind="stable")
    vert, tri = vert[order], tri[order]
    counts = np.bincount(vert, minlength=n_vertices)
    degree = max(int(counts.max(initial=0)), 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(vert.size) - starts[vert]
    table = np.full((n_vertices, degree), n_tri, np.int32)
    table[vert, slot] = tri
    return table
