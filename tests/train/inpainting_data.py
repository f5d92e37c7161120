"""Toy inpainting records for the de-occlusion stages' training tests (a helper module, not a test
file): a smooth face-like picture (an ellipse with two dark eyes) with a square occluder over it,
through the real ``data.inpainting.InpaintingPairs`` (occluder holes and free-form ones)."""

from __future__ import annotations

import numpy as np

from occface_jax.data.inpainting import InpaintingPairs


class ToyFaces:
    """Records with ``clean``, ``occluded``, ``mask`` and ``face_region`` (S, S), deterministic."""

    def __init__(self, n: int = 24, size: int = 32) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([7, index])
        s = self.size
        y, x = (np.mgrid[0:s, 0:s] + 0.5) / s
        cx, cy = 0.5 + rng.uniform(-0.08, 0.08), 0.5 + rng.uniform(-0.08, 0.08)
        face = ((x - cx) / 0.32) ** 2 + ((y - cy) / 0.42) ** 2 < 1.0
        skin = rng.uniform(0.5, 0.8, 3)
        clean = np.where(face[..., None], skin, 0.2 + 0.3 * y[..., None]).astype(np.float32)
        for ex in (cx - 0.12, cx + 0.12):
            eye = ((x - ex) / 0.06) ** 2 + ((y - cy + 0.08) / 0.04) ** 2 < 1.0
            clean[eye] = 0.1
        mask = np.zeros((s, s), np.float32)
        top, left = rng.integers(s // 4, s // 2, 2)
        mask[top : top + s // 3, left : left + s // 3] = 1.0
        mask *= face
        occluded = np.where(mask[..., None] > 0, rng.uniform(0, 1, 3), clean).astype(np.float32)
        return {
            "clean": clean,
            "occluded": occluded,
            "mask": mask,
            "face_region": face.astype(np.float32),
        }


def toy_pairs(n: int = 24, size: int = 32, seed: int = 0) -> InpaintingPairs:
    return InpaintingPairs(ToyFaces(n, size), seed=seed, p_freeform=0.25, dilation=0.03)
