"""Segmentation metrics on masks whose counts are known by construction."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from occface_jax.eval.metrics.segmentation import (
    mask_counts,
    mask_iou,
    precision_recall,
    region_fraction,
)


def test_counts_iou_precision_recall():
    target = np.zeros((2, 10, 10), np.float32)
    pred = np.zeros((2, 10, 10), np.float32)
    target[0, :4, :5] = 1  # 20 pixels
    pred[0, 2:6, :5] = 1  # 20 pixels, 10 shared
    pred[1, 0, :3] = 0.9  # 3 false positives on an empty target
    c = {k: np.asarray(v) for k, v in mask_counts(jnp.asarray(pred), jnp.asarray(target)).items()}
    assert c["tp"].tolist() == [10, 0] and c["fp"].tolist() == [10, 3]
    assert c["fn"].tolist() == [10, 0]
    np.testing.assert_allclose(np.asarray(mask_iou(pred, target)), [10 / 30, 0.0])
    precision, recall = precision_recall(jnp.asarray(pred), jnp.asarray(target))
    np.testing.assert_allclose([float(precision), float(recall)], [10 / 23, 10 / 20])


def test_empty_prediction_of_empty_target_is_perfect():
    empty = jnp.zeros((1, 5, 5))
    assert float(mask_iou(empty, empty)[0]) == 1.0
    assert [float(v) for v in precision_recall(empty, empty)] == [1.0, 1.0]


def test_region_fraction_pools_over_images():
    region = np.zeros((2, 4, 4), np.float32)
    region[0, :2] = 1  # 8 pixels
    region[1] = 1  # 16 pixels
    pred = np.zeros_like(region)
    pred[0, 0, :2] = 1  # 2 inside the region
    pred[0, 3] = 1  # 4 outside: not counted
    pred[1, 0, 0] = 0.5  # soft: counts one half
    np.testing.assert_allclose(float(region_fraction(pred, region)), 2.5 / 24, rtol=1e-6)
