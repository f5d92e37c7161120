"""The N_mask stage: the occlusion-mask U-Net trained on occluded faces with known masks.

Batch: ``image`` (B, S, S, 3) float32 in [0, 1] (the occluded face) and ``mask`` (B, S, S) float32
(1 = occluder over the face), S = ``config.model.input_size`` (records are resized to it). Loss:
BCE + ``dice_weight`` x soft Dice (``occface_jax.losses.mask``); random horizontal flips inside the
step. Evaluation: per-image IoU, BCE and the pixel counts behind pooled precision / recall; TensorBoard
images: the image, the predicted mask and the true mask. Optimizer: AdamW from ``config.train``
(lr, warm-up + cosine, weight decay, clipping at 1), as before the task contract.
"""

from __future__ import annotations

from typing import Any

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from occface_jax.eval.metrics.segmentation import mask_counts, mask_iou
from occface_jax.losses.mask import sigmoid_bce, soft_dice_loss
from occface_jax.models.unet import build_unet
from occface_jax.train.task import Phase, Task


class MaskTask(Task):
    """The N_mask stage: one model (``unet``), one phase (BCE + Dice), images at evaluation."""

    name = "mask"
    models = {"unet": (build_unet, "model")}

    def phases(self, config: ml_collections.ConfigDict) -> list[Phase]:
        return [Phase(self.loss, updates="unet")]

    def make_batch(self, records: dict[str, Any], config: ml_collections.ConfigDict) -> dict:
        size = int(config.model.input_size)
        image = np.asarray(records["occluded"], np.float32)
        mask = np.asarray(records["mask"], np.float32)
        if image.shape[1:3] != (size, size):
            image = np.stack([_resize(x, size) for x in image])
            mask = (np.stack([_resize(x, size) for x in mask]) > 0.5).astype(np.float32)
        return {"image": image, "mask": mask}

    def loss(
        self,
        models: dict,
        frozen: dict,
        batch: dict,
        key: jax.Array,
        config: ml_collections.ConfigDict,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        image, mask = batch["image"], batch["mask"]
        if bool(config.train.flip):
            flip = jax.random.bernoulli(key, 0.5, (image.shape[0],))
            image = jnp.where(flip[:, None, None, None], image[:, :, ::-1], image)
            mask = jnp.where(flip[:, None, None], mask[:, :, ::-1], mask)
        logits = models["unet"](image)
        bce = jnp.mean(sigmoid_bce(logits, mask))
        dice = jnp.mean(soft_dice_loss(logits, mask))
        loss = bce + float(config.train.dice_weight) * dice
        return loss, {"bce": bce, "dice": dice}

    def evaluate(self, models: dict, frozen: dict, batch: dict, config) -> dict:
        logits = models["unet"](batch["image"])
        pred = (logits > 0.0).astype(jnp.float32)
        counts = mask_counts(pred, batch["mask"])
        return {
            "iou": mask_iou(pred, batch["mask"]),
            "bce": sigmoid_bce(logits, batch["mask"]),
            **{k: v.astype(jnp.float32) for k, v in counts.items()},
        }

    def images(self, models: dict, frozen: dict, batch: dict, config) -> dict:
        return {
            "image": batch["image"],
            "predicted_mask": jax.nn.sigmoid(models["unet"](batch["image"])),
            "true_mask": batch["mask"],
        }


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA)
