"""Face verification: similarities and distances of identity descriptors (e.g. the (N, 128)
outputs of ``models.face_id.FaceIdNet``), and how often two sets of distances make the same
same-person decision. Numpy, float64 (descriptor comparisons are printed to many digits)."""

from __future__ import annotations

import numpy as np


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of the angle between descriptors, over the last axis: (..., D), (..., D) -> (...,)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def pairwise_distances(descriptors: np.ndarray) -> np.ndarray:
    """Euclidean distance between every two descriptors: (N, D) -> (N, N), zero diagonal."""
    d = np.asarray(descriptors, np.float64)
    return np.linalg.norm(d[:, None] - d[None], axis=-1)


def upper_pairs(distances: np.ndarray) -> np.ndarray:
    """The distances of the N (N - 1) / 2 unordered pairs (i < j) of an (N, N) matrix, row-major."""
    return np.asarray(distances)[np.triu_indices(len(distances), 1)]


def decision_agreement(distances_a: np.ndarray, distances_b: np.ndarray, threshold: float) -> float:
    """Share of the unordered pairs on which two (N, N) distance matrices of the same faces agree
    about "same person" (distance < ``threshold``), in [0, 1]."""
    same_a = upper_pairs(distances_a) < threshold
    return float(np.mean(same_a == (upper_pairs(distances_b) < threshold)))
