"""Training N_cont, the contour-completion GAN (the paper's §3.2, after EdgeConnect's edge model):
``occface train contour``.

Input: the gray face with a hole, its Canny contours outside the hole and the hole (Eq. 1);
output: the contour map inside the hole. Losses: Eq. 2 adversarial (``loss.adversarial``: the
paper's ``minimax`` log form, ``nonsaturating``, ``hinge`` or ``least_squares``) times
``loss.adv`` (lambda_adv 1) + Eq. 3 feature matching over the discriminator's layers times
``loss.feature_matching`` (lambda_ffea 11.5); ``loss.bce`` (0 in the paper) adds a per-pixel BCE
against the true contours. Data and holes: ``configs/inpainting.py``.

Variants: ``''`` (CPU: 128 px, 16 channels, batch 8), ``'paper'`` (256 px, 64 channels, batch 10:
the accelerator config), ``'smoke'`` (tiny, for tests). Override from the command line, e.g.
``occface train contour --set train.steps=500 --set inpainting.photos=DIR``.
"""

from __future__ import annotations

import ml_collections

from occface_jax.config import load_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = load_config("inpainting", variant)
    c.stage = "contour"
    size = {"": 128, "paper": 256, "smoke": 32}[variant]
    width = {"": 16, "paper": 64, "smoke": 4}[variant]
    c.data.image_size = size
    c.generator = ml_collections.ConfigDict(
        dict(
            input_size=size,
            features=width,
            residual_blocks=2 if variant == "smoke" else 8,
            spectral_norm=True,
        )
    )
    c.discriminator = ml_collections.ConfigDict(
        dict(in_channels=2, features=width, layers=3, scales=1, spectral_norm=True, norm="none")
    )
    c.loss = ml_collections.ConfigDict(
        dict(adversarial="nonsaturating", adv=1.0, feature_matching=11.5, bce=0.0)
    )
    if variant == "paper":
        c.train.batch_size = 10
    return c
