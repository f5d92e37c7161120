"""Binary segmentation metrics (occlusion masks): intersection over union, precision, recall.

Inputs are (..., H, W) arrays; a value > 0.5 is "positive". Counts are per image; an image where
both prediction and target are empty has IoU 1 (nothing to find, nothing found).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mask_counts(pred: jax.Array, target: jax.Array) -> dict[str, jax.Array]:
    """True positive, false positive and false negative pixel counts per image, each (...,)."""
    p, t = pred > 0.5, target > 0.5
    return {
        "tp": jnp.sum(p & t, axis=(-2, -1)),
        "fp": jnp.sum(p & ~t, axis=(-2, -1)),
        "fn": jnp.sum(~p & t, axis=(-2, -1)),
    }


def mask_iou(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Intersection over union per image, (...,) in [0, 1]; 1 when both are empty."""
    c = mask_counts(pred, target)
    union = c["tp"] + c["fp"] + c["fn"]
    return jnp.where(union > 0, c["tp"] / jnp.maximum(union, 1), 1.0)


def precision_recall(pred: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Pooled precision and recall over all images (scalars; 1 where nothing was predicted / due)."""
    c = {k: jnp.sum(v) for k, v in mask_counts(pred, target).items()}
    return precision_recall_from_counts(c["tp"], c["fp"], c["fn"])


def precision_recall_from_counts(
    tp: jax.Array, fp: jax.Array, fn: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Precision and recall of pixel counts (sum them over images first to pool); 1 where
    nothing was predicted / due."""
    tp, fp, fn = (jnp.asarray(x, jnp.float32) for x in (tp, fp, fn))
    precision = jnp.where(tp + fp > 0, tp / jnp.maximum(tp + fp, 1), 1.0)
    recall = jnp.where(tp + fn > 0, tp / jnp.maximum(tp + fn, 1), 1.0)
    return precision, recall


def region_fraction(pred: jax.Array, region: jax.Array) -> jax.Array:
    """Share of the ``region`` pixels that ``pred`` covers, pooled over all images (a scalar):
    sum(pred x region) / sum(region); soft values count by their value (no threshold)."""
    pred, region = jnp.asarray(pred, jnp.float32), jnp.asarray(region, jnp.float32)
    return jnp.sum(pred * region) / jnp.sum(region)
