"""Training N_mask, the occlusion-mask U-Net (the paper's first network): ``occface train mask``.

Input: an aligned face crop (RGB in [0, 1], resized to ``data.image_size``); target: the data
engine's occluder mask over the face (1 = occluder). Default data: synthetic occluded faces rendered
from the morphable model, generated once into the cache (``synthetic_cached``) and read back.
Variants: ``'photos'`` / ``'celebamask'`` (occluders pasted on real photos under ``data.root``;
CelebAMask-HQ is the paper's data), ``'smoke'`` (tiny, for CPU tests).
Override from the command line: ``occface train mask --set train.steps=500 --set data.root=DIR``.
"""

from __future__ import annotations

import ml_collections

from occface_jax.config import load_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.stage = "mask"
    data_variant = variant if variant in ("photos", "celebamask", "smoke") else ""
    c.data = load_config("data", data_variant)
    if not data_variant:
        c.data.source = "synthetic_cached"
        c.data.size = 4000  # generated once (about 10 minutes on a 2-core CPU), then epochs over it
        c.data.seed = 1  # experiments draw their synthetic faces from other seeds
    c.data.occlusion.p_clean = 0.1  # some faces without any occluder: the mask must stay empty
    c.data.occlusion.coverage = (0.05, 0.5)
    c.data.validation_size = 128  # the last records, held out of training, for the IoU
    c.model = ml_collections.ConfigDict(dict(features=8, depth=4, norm_groups=4, input_size=96))
    c.train = ml_collections.ConfigDict(
        dict(
            batch_size=8,  # global: split over the devices of the ('data',) mesh
            steps=6000,
            lr=2e-3,
            warmup_steps=100,
            weight_decay=1e-4,
            dice_weight=1.0,  # loss = BCE + dice_weight * soft Dice
            flip=True,  # random horizontal flips
            seed=0,
            log_every=25,
            eval_every=250,
            checkpoint_every=250,
            keep_checkpoints=2,
            images=4,  # examples per TensorBoard picture (image, predicted / true mask) at evaluation
            workers=0,  # grain worker processes (0: read in this process)
        )
    )
    if variant == "smoke":
        c.data.validation_size = 8
        c.model.features = 4
        c.model.depth = 2
        c.model.input_size = 32
        c.model.norm_groups = 2
        c.train.update(
            batch_size=8, steps=6, log_every=2, eval_every=3, checkpoint_every=3, warmup_steps=1
        )
    elif variant not in ("", "photos", "celebamask", "smoke"):
        raise ValueError(f"unknown mask config variant {variant!r}")
    return c
