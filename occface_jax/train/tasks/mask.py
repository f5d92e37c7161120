"""The N_mask stage: the occlusion-mask U-Net trained on occluded faces with known masks.

Batch: ``image`` (B, S, S, 3) float32 in [0, 1] (the occluded face) and ``mask`` (B, S, S) float32
(1 = occluder over the face), S = ``config.model.input_size`` (records are resized to it). Loss:
BCE + ``dice_weight`` x soft Dice (``occface_jax.losses.mask``); random horizontal flips inside the
step. Evaluation: per-image IoU, BCE and the pixel counts behind pooled precision / recall.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from occface_jax.eval.metrics.segmentation import mask_counts, mask_iou
from occface_jax.losses.mask import sigmoid_bce, soft_dice_loss
from occface_jax.models.unet import UNet


class MaskTask:
    """``occface_jax.train.loop.Task`` for N_mask."""

    name = "mask"

    def build_model(self, config: ml_collections.ConfigDict, rngs: nnx.Rngs) -> UNet:
        m = config.model
        return UNet(
            features=int(m.features), depth=int(m.depth), norm_groups=int(m.norm_groups), rngs=rngs
        )

    def make_batch(self, records: dict[str, Any], config: ml_collections.ConfigDict) -> dict:
        size = int(config.model.input_size)
        image = np.asarray(records["occluded"], np.float32)
        mask = np.asarray(records["mask"], np.float32)
        if image.shape[1:3] != (size, size):
            image = np.stack([_resize(x, size) for x in image])
            mask = (np.stack([_resize(x, size) for x in mask]) > 0.5).astype(np.float32)
        return {"image": image, "mask": mask}

    def loss(
        self, model: UNet, batch: dict, key: jax.Array, config: ml_collections.ConfigDict
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        image, mask = batch["image"], batch["mask"]
        if bool(config.train.flip):
            flip = jax.random.bernoulli(key, 0.5, (image.shape[0],))
            image = jnp.where(flip[:, None, None, None], image[:, :, ::-1], image)
            mask = jnp.where(flip[:, None, None], mask[:, :, ::-1], mask)
        logits = model(image)
        bce = jnp.mean(sigmoid_bce(logits, mask))
        dice = jnp.mean(soft_dice_loss(logits, mask))
        loss = bce + float(config.train.dice_weight) * dice
        return loss, {"bce": bce, "dice": dice}

    def evaluate(self, model: UNet, batch: dict, config: ml_collections.ConfigDict) -> dict:
        logits = model(batch["image"])
        pred = (logits > 0.0).astype(jnp.float32)
        counts = mask_counts(pred, batch["mask"])
        return {
            "iou": mask_iou(pred, batch["mask"]),
            "bce": sigmoid_bce(logits, batch["mask"]),
            **{k: v.astype(jnp.float32) for k, v in counts.items()},
        }


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA)
