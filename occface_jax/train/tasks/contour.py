"""N_cont, the contour-completion GAN (the paper's §3.2, Eq. 1-3; EdgeConnect's edge model).

Two models: ``generator`` (:func:`occface_jax.models.edge_connect.build_edge_generator`: gray face,
contours and hole in, contour logits out; it masks its inputs itself, Eq. 1) and
``discriminator`` (:func:`occface_jax.models.patch_gan.build_patch_discriminator`, D_1: a
spectrally normalised PatchGAN on (contour map, gray face), Eq. 2). Two phases per step, the
discriminator's first:

- ``d``: ``loss.adversarial``'s discriminator loss on (C_true, gray_clean) against (the
  generator's contour probabilities, gray_clean), the prediction held constant;
- ``g``: ``loss.adv`` x the adversarial loss of the prediction + ``loss.feature_matching`` x Eq. 3
  (the discriminator's activations on the prediction against those on C_true) + ``loss.bce`` x the
  per-pixel BCE against C_true (0 in the paper).

Batches: ``train.tasks.inpainting``. Evaluation (held-out synthetic faces, holes = occluders):
per image, inside the hole, the pixel counts of the predicted contours (probability > 0.5) against
C_true (``tp``, ``fp``, ``fn``; pooled precision = tp / (tp + fp)) and the BCE. Images: the gray
input with its hole, the hole, the predicted contours (C_fina), C_true.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from occface_jax.eval.metrics.segmentation import mask_counts
from occface_jax.losses.gan import (
    ADVERSARIAL_KINDS,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from occface_jax.losses.mask import sigmoid_bce
from occface_jax.models.edge_connect import build_edge_generator, complete_contours
from occface_jax.models.patch_gan import build_patch_discriminator
from occface_jax.train.task import Phase
from occface_jax.train.tasks.inpainting import InpaintingTask, check_kind


def contour_logits(models: dict, batch: dict) -> jax.Array:
    """N_cont's logits (B, S, S) for a batch."""
    return models["generator"](batch["gray"], batch["contour"], batch["mask"])


def conditioned(contour: jax.Array, gray: jax.Array) -> jax.Array:
    """D_1's input (B, S, S, 2): the contour map and the gray face it belongs to."""
    return jnp.stack([contour, gray], axis=-1)


class ContourTask(InpaintingTask):
    name = "contour"
    models = {
        "generator": (build_edge_generator, "generator"),
        "discriminator": (build_patch_discriminator, "discriminator"),
    }

    def phases(self, config: ml_collections.ConfigDict) -> list[Phase]:
        check_kind(str(config.loss.adversarial), ADVERSARIAL_KINDS)
        return [
            Phase(self.discriminator_phase, updates="discriminator", name="d"),
            Phase(self.generator_phase, updates="generator", name="g"),
        ]

    def discriminator_phase(self, models, frozen, batch, key, config):
        batch = self.flipped(batch, key, config)
        fake = jax.lax.stop_gradient(jax.nn.sigmoid(contour_logits(models, batch)))
        d = models["discriminator"]
        real_out = d(conditioned(batch["contour"], batch["gray_clean"]))
        fake_out = d(conditioned(fake, batch["gray_clean"]))
        loss = jnp.mean(discriminator_loss(real_out, fake_out, str(config.loss.adversarial)))
        return loss, {}

    def generator_phase(self, models, frozen, batch, key, config):
        batch = self.flipped(batch, key, config)
        logits = contour_logits(models, batch)
        d = models["discriminator"]
        real_out = d(conditioned(batch["contour"], batch["gray_clean"]))
        fake_out = d(conditioned(jax.nn.sigmoid(logits), batch["gray_clean"]))
        weights = config.loss
        adv = jnp.mean(generator_adversarial_loss(fake_out, str(weights.adversarial)))
        fm = jnp.mean(feature_matching_loss(real_out, fake_out))
        terms = {"adv": adv, "feature_matching": fm}
        loss = float(weights.adv) * adv + float(weights.feature_matching) * fm
        if float(weights.bce) > 0:
            terms["bce"] = jnp.mean(sigmoid_bce(logits, batch["contour"]))
            loss = loss + float(weights.bce) * terms["bce"]
        return loss, terms

    def evaluate(self, models, frozen, batch, config):
        logits = contour_logits(models, batch)
        hole = batch["mask"]
        pred = (logits > 0.0).astype(jnp.float32) * hole
        counts = mask_counts(pred, batch["contour"] * hole)
        tp, fp, fn = (counts[k].astype(jnp.float32) for k in ("tp", "fp", "fn"))
        per_pixel = jax.nn.softplus(logits) - batch["contour"] * logits  # BCE of each pixel
        bce = jnp.sum(per_pixel * hole, axis=(1, 2))
        return {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": jnp.where(tp + fp > 0, tp / jnp.maximum(tp + fp, 1.0), 1.0),
            "recall": jnp.where(tp + fn > 0, tp / jnp.maximum(tp + fn, 1.0), 1.0),
            "bce_in_hole": bce / jnp.maximum(jnp.sum(hole, axis=(1, 2)), 1.0),
        }

    def images(self, models, frozen, batch, config):
        hole = batch["mask"]
        contour = complete_contours(models["generator"], batch["gray"], batch["contour"], hole)
        return {
            "input": batch["gray"] * (1.0 - hole) + 0.5 * hole,
            "hole": hole,
            "contour": contour,
            "true_contour": batch["contour"],
        }
