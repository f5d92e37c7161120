"""Training N_syn, the face-synthesis GAN (the paper's §3.2, a pix2pixHD global generator with 4
residual blocks): ``occface train synthesis``.

Input: the face with a hole and the complete contours C_fina = C_true (1 - M) + C_syn M (Eq. 4);
output: the complete face, kept from the input outside the hole. C_syn is the true contour map
(``train.contours = 'true'``, the first training) or N_cont's prediction (``'predicted'``, the
paper's fine-tuning: N_cont is then loaded frozen from ``WORKDIR/contour/``). Losses (weights in
``loss``): Eq. 4 adversarial with a multi-scale PatchGAN conditioned on C_fina (``adv``,
lambda_sar 0.1), Eq. 5 L1 divided by the hole's size (``pixel``, lambda_pix 1), Eq. 6 style loss on
Gram matrices of a fixed network's activations (``style``, lambda_styl 250; ``loss.extractor.name``
from ``models.feature_extractors.FEATURE_EXTRACTORS``: ``face_id`` (dlib's face-ID ResNet, the
default: no package ships the paper's VGG-19) or ``vgg19`` with ``loss.extractor.weights`` an npz of
torchvision's weights); ``perceptual`` and ``feature_matching`` (0 in the paper) are there to try.
Data and holes: ``configs/inpainting.py``.

Variants: ``''`` (CPU: 128 px, 16 channels, 3 down-samplings, batch 8), ``'paper'`` (512 px, 64
channels, 4 down-samplings, batch 12), ``'smoke'`` (tiny, for tests).
"""

from __future__ import annotations

import ml_collections

from occface_jax.config import load_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = load_config("inpainting", variant)
    c.stage = "synthesis"
    size = {"": 128, "paper": 512, "smoke": 32}[variant]
    width = {"": 16, "paper": 64, "smoke": 4}[variant]
    c.data.image_size = size
    c.generator = ml_collections.ConfigDict(
        dict(
            input_size=size,
            features=width,
            downsamplings={"": 3, "paper": 4, "smoke": 2}[variant],
            residual_blocks=4,
        )
    )
    c.discriminator = ml_collections.ConfigDict(
        dict(
            in_channels=4,
            features=width,
            layers=3,
            scales=1 if variant == "smoke" else 2,
            spectral_norm=False,
            norm="instance",
        )
    )
    c.loss = ml_collections.ConfigDict(
        dict(
            adversarial="nonsaturating",
            adv=0.1,
            pixel=1.0,
            style=250.0,
            perceptual=0.0,
            feature_matching=0.0,
            extractor=dict(name="face_id", weights=""),
        )
    )
    c.train.contours = "true"  # 'true' | 'predicted' (N_cont's, frozen from WORKDIR/contour/)
    if variant == "paper":
        c.train.batch_size = 12
    return c
