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


def threshold_accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Share of pairs decided right when "same person" means ``score >= threshold``."""
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(same, bool)))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold of highest accuracy on these pairs: among the midpoints between consecutive
    distinct scores and below / above all of them (the lowest such on ties)."""
    s = np.unique(np.asarray(scores, np.float64))
    candidates = np.concatenate([[s[0] - 1.0], (s[:-1] + s[1:]) / 2, [s[-1] + 1.0]])
    decided = np.asarray(scores)[None, :] >= candidates[:, None]
    accuracy = (decided == np.asarray(same, bool)[None, :]).mean(axis=1)
    return float(candidates[int(np.argmax(accuracy))])


def fold_accuracies(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """LFW's View-2 protocol: for each fold, the threshold chosen on the other folds and the
    accuracy it gives on this one. Returns (accuracies (K,), thresholds (K,)) in fold order."""
    scores, same, folds = np.asarray(scores), np.asarray(same, bool), np.asarray(folds)
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        train = folds != fold
        threshold = best_threshold(scores[train], same[train])
        thresholds.append(threshold)
        accuracies.append(threshold_accuracy(scores[~train], same[~train], threshold))
    return np.asarray(accuracies), np.asarray(thresholds)


def roc_curve(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) of "same" = ``score >= t`` for t from above the
    highest score down to the lowest: both from 0 to 1, non-decreasing (ties move together)."""
    scores, same = np.asarray(scores, np.float64), np.asarray(same, bool)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], same[order]
    last = np.r_[np.diff(s) != 0, True]  # the last pair of each run of equal scores
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    tpr = np.r_[0.0, tp / max(int(same.sum()), 1)]
    fpr = np.r_[0.0, fp / max(int((~same).sum()), 1)]
    return fpr, tpr


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids), in [0, 1]: the chance a same-person pair scores
    above a different-person pair (ties count half)."""
    fpr, tpr = roc_curve(scores, same)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def equal_error_rate(scores: np.ndarray, same: np.ndarray) -> float:
    """The rate where false accepts equal false rejects (linear between ROC points), in [0, 1]."""
    fpr, tpr = roc_curve(scores, same)
    fnr = 1.0 - tpr
    k = int(np.argmax(fpr >= fnr))  # the first point past the crossing
    if k == 0:
        return float(fpr[0])
    d0, d1 = fnr[k - 1] - fpr[k - 1], fnr[k] - fpr[k]
    w = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[k - 1] + w * (fpr[k] - fpr[k - 1]))
