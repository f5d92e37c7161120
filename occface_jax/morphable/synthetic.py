"""A small synthetic morphable model (a UV-sphere 'head' with random smooth bases) for fast tests."""

from __future__ import annotations

import numpy as np

from occface_jax.morphable.io import model_from_fields
from occface_jax.morphable.model import MorphableModel


def sphere_mesh(
    n_lat: int = 12, n_lon: int = 16, radius: float = 80.0
) -> tuple[np.ndarray, np.ndarray]:
    """A closed UV sphere (vertices (N, 3) mm, triangles (F, 3) counter-clockwise from outside)."""
    lat = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    ring = np.stack(
        [
            np.outer(np.sin(lat), np.sin(lon)).ravel(),
            np.repeat(np.cos(lat), n_lon),
            np.outer(np.sin(lat), np.cos(lon)).ravel(),
        ],
        axis=1,
    )
    verts = np.concatenate([[[0, 1, 0]], ring, [[0, -1, 0]]]) * radius
    top, bottom = 0, verts.shape[0] - 1
    j = np.arange(n_lon)
    jn = (j + 1) % n_lon
    tris = [np.stack([np.full(n_lon, top), 1 + j, 1 + jn], 1)]
    for r in range(n_lat - 2):
        a, b = 1 + r * n_lon + j, 1 + r * n_lon + jn
        c, d = a + n_lon, b + n_lon
        tris += [np.stack([a, c, d], 1), np.stack([a, d, b], 1)]
    last = 1 + (n_lat - 2) * n_lon
    tris.append(np.stack([np.full(n_lon, bottom), last + jn, last + j], 1))
    return verts.astype(np.float32), np.concatenate(tris).astype(np.int32)


def toy_model(
    n_lat: int = 12, n_lon: int = 16, n_id: int = 6, n_exp: int = 4, seed: int = 0
) -> MorphableModel:
    """A sphere model with smooth random identity/expression bases (a few mm per unit coefficient),
    the fallback albedo, its front hemisphere (z > 0) as face region and 68 'landmarks' on it."""
    rng = np.random.default_rng(seed)
    verts, tris = sphere_mesh(n_lat, n_lon)
    unit = verts / np.linalg.norm(verts, axis=1, keepdims=True)

    def smooth_basis(k: int, amplitude: float) -> np.ndarray:
        w = rng.normal(size=(k, 3, 3))
        fields = np.einsum("kcd,nd->knc", w, unit) * amplitude  # linear fields of the position
        return fields.reshape(k, -1).T.astype(np.float32)

    face = unit[:, 2] > 0.2
    landmarks = rng.choice(np.flatnonzero(face), 68, replace=face.sum() < 68)
    return model_from_fields(
        {
            "mean_shape": verts,
            "id_basis": smooth_basis(n_id, 3.0),
            "exp_basis": smooth_basis(n_exp, 2.0),
            "triangles": tris,
            "landmarks68": landmarks.astype(np.int32),
            "face_region": face,
            "name": np.array("toy_sphere"),
        },
        source="toy_model",
    )


def triangle_atlas(n_triangles: int, margin: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Texture coordinates giving every triangle its own UV triangle in a grid cell (a seam along
    every edge): coords (3F, 2) float32 in [0, 1] and uv_triangles (F, 3) int32; ``margin`` is
    the gap to the cell's sides as a fraction of the cell. For tests of UV handling and baking."""
    g = int(np.ceil(np.sqrt(n_triangles)))
    k = np.arange(n_triangles)
    x0, y0, s = (k % g) / g, (k // g) / g, 1.0 / g
    m = margin * s
    corners = [(x0 + m, y0 + m), (x0 + s - m, y0 + m), (x0 + m, y0 + s - m)]
    coords = np.stack([np.stack(c, axis=1) for c in corners], axis=1).reshape(-1, 2)
    return coords.astype(np.float32), np.arange(3 * n_triangles).reshape(-1, 3).astype(np.int32)
