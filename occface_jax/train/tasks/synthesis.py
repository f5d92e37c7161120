"""N_syn, the face-synthesis GAN (the paper's §3.2, Eq. 4-6; a pix2pixHD global generator).

Two models: ``generator`` (:func:`occface_jax.models.pix2pixhd.build_global_generator`: the face
with its hole, the complete contours C_fina and the hole in, a complete face out; it masks its
image input itself) and ``discriminator`` (D_2,
:func:`occface_jax.models.patch_gan.build_patch_discriminator`: multi-scale PatchGAN on (face,
C_fina), Eq. 4). Frozen: the style network (``loss.extractor``,
:mod:`occface_jax.models.feature_extractors`) and, with ``train.contours = 'predicted'``, N_cont
(``WORKDIR/contour/``), whose probabilities fill the hole of C_fina = C_true (1 - M) + C_syn M;
with ``'true'`` C_syn = C_true. Two phases per step, the discriminator's first:

- ``d``: ``loss.adversarial``'s discriminator loss on (clean, C_fina) against (the generator's
  output, C_fina), the output held constant;
- ``g``: ``loss.adv`` (lambda_sar) x the adversarial loss + ``loss.pixel`` x Eq. 5 (L1 of the whole
  output against the clean face divided by the hole's size S_m, as EdgeConnect) + ``loss.style`` x
  Eq. 6 (Gram matrices of the extractor's activations on output x M against clean x M) and, when
  non-zero, ``loss.perceptual`` (activations of output vs clean) and ``loss.feature_matching``
  (Eq. 3 with D_2).

The result the pipeline uses is the composite: the input outside the hole, the output inside
(:func:`occface_jax.models.pix2pixhd.composite`). Evaluation (held-out synthetic faces, holes =
occluders), per image, of the composite against the clean face inside the hole: L1, PSNR, SSIM
(``eval.metrics.image``), and the whole image's L1. Images: input with its hole, the hole,
C_fina, the composite, the clean face.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from occface_jax.errors import OccfaceError
from occface_jax.eval.metrics.image import l1_error, masked_l1, masked_psnr, masked_ssim
from occface_jax.losses.gan import (
    ADVERSARIAL_KINDS,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    masked_l1_loss,
    perceptual_loss,
    style_loss,
)
from occface_jax.models.edge_connect import complete_contours
from occface_jax.models.feature_extractors import build_feature_extractor
from occface_jax.models.patch_gan import build_patch_discriminator
from occface_jax.models.pix2pixhd import build_global_generator, composite
from occface_jax.train.task import Phase
from occface_jax.train.tasks.inpainting import InpaintingTask, check_kind

CONTOUR_SOURCES = ("true", "predicted")
UPSTREAM_CONTOUR = "contour.generator"  # the frozen N_cont's name in ``frozen``


def conditioned(image: jax.Array, contour: jax.Array) -> jax.Array:
    """D_2's input (B, S, S, 4): the face and the contour map C_fina it was made from."""
    return jnp.concatenate([image, contour[..., None]], axis=-1)


class SynthesisTask(InpaintingTask):
    name = "synthesis"
    models = {
        "generator": (build_global_generator, "generator"),
        "discriminator": (build_patch_discriminator, "discriminator"),
    }

    def required_stages(self, config: ml_collections.ConfigDict) -> tuple[str, ...]:
        return ("contour",) if _contour_source(config) == "predicted" else ()

    def frozen(self, config, upstream):
        frozen = {"extractor": build_feature_extractor(config.loss.extractor)}
        if "contour" in upstream:
            frozen[UPSTREAM_CONTOUR] = upstream["contour"]["generator"]
        return frozen

    def phases(self, config: ml_collections.ConfigDict) -> list[Phase]:
        check_kind(str(config.loss.adversarial), ADVERSARIAL_KINDS)
        _contour_source(config)
        return [
            Phase(self.discriminator_phase, updates="discriminator", name="d"),
            Phase(self.generator_phase, updates="generator", name="g"),
        ]

    def contours(self, frozen: dict, batch: dict) -> jax.Array:
        """C_fina (B, S, S): C_true outside the hole; inside it N_cont's contour probabilities
        when N_cont is loaded, else C_true."""
        if UPSTREAM_CONTOUR not in frozen:
            return batch["contour"]
        generator = frozen[UPSTREAM_CONTOUR]
        return complete_contours(generator, batch["gray"], batch["contour"], batch["mask"])

    def synthesise(self, models: dict, frozen: dict, batch: dict) -> tuple[jax.Array, jax.Array]:
        """(C_fina, the generator's raw output (B, S, S, 3) in [0, 1])."""
        contour = jax.lax.stop_gradient(self.contours(frozen, batch))
        return contour, models["generator"](batch["image"], contour, batch["mask"])

    def discriminator_phase(self, models, frozen, batch, key, config):
        batch = self.flipped(batch, key, config)
        contour, output = self.synthesise(models, frozen, batch)
        d = models["discriminator"]
        real_out = d(conditioned(batch["clean"], contour))
        fake_out = d(conditioned(jax.lax.stop_gradient(output), contour))
        loss = jnp.mean(discriminator_loss(real_out, fake_out, str(config.loss.adversarial)))
        return loss, {}

    def generator_phase(self, models, frozen, batch, key, config):
        batch = self.flipped(batch, key, config)
        contour, output = self.synthesise(models, frozen, batch)
        weights = config.loss
        d = models["discriminator"]
        fake_out = d(conditioned(output, contour))
        clean, hole = batch["clean"], batch["mask"][..., None]
        terms = {
            "adv": jnp.mean(generator_adversarial_loss(fake_out, str(weights.adversarial))),
            "pixel": jnp.mean(masked_l1_loss(output, clean, batch["mask"])),
        }
        extractor = frozen["extractor"]
        if float(weights.style) > 0:
            terms["style"] = jnp.mean(
                style_loss(extractor.features(output * hole), extractor.features(clean * hole))
            )
        if float(weights.perceptual) > 0:
            terms["perceptual"] = jnp.mean(
                perceptual_loss(extractor.features(output), extractor.features(clean))
            )
        if float(weights.feature_matching) > 0:
            real_out = d(conditioned(clean, contour))
            terms["feature_matching"] = jnp.mean(feature_matching_loss(real_out, fake_out))
        loss = sum(float(weights[name]) * value for name, value in terms.items())
        return loss, terms

    def evaluate(self, models, frozen, batch, config):
        _, output = self.synthesise(models, frozen, batch)
        result = composite(output, batch["image"], batch["mask"])
        clean, hole = batch["clean"], batch["mask"]
        return {
            "l1_in_hole": masked_l1(result, clean, hole),
            "psnr_in_hole": masked_psnr(result, clean, hole),
            "ssim_in_hole": masked_ssim(result, clean, hole),
            "l1": l1_error(result, clean),
        }

    def images(self, models, frozen, batch, config):
        contour, output = self.synthesise(models, frozen, batch)
        hole = batch["mask"]
        return {
            "input": batch["image"] * (1.0 - hole[..., None]) + 0.5 * hole[..., None],
            "hole": hole,
            "contour": contour,
            "synthesis": composite(output, batch["image"], hole),
            "clean": batch["clean"],
        }


def _contour_source(config: ml_collections.ConfigDict) -> str:
    source = str(config.train.get("contours", "true"))
    if source not in CONTOUR_SOURCES:
        raise OccfaceError(f"train.contours={source!r}: one of {', '.join(CONTOUR_SOURCES)}")
    return source
