"""The de-occlusion stages' shared settings (``configs/contour.py``, ``configs/synthesis.py``):
their data, the hole masks, the optimizers and the training loop's bookkeeping. Not a stage of its
own.

Data: the data engine's synthetic occluded faces (``data`` block, ``configs/data.py``; by default
the very set N_mask trains on: 4000 records at 128 px, seed 1, generated once into the cache) mixed
with real photos with pasted occluders (``inpainting.photos``: a folder of face photos with 68-point
annotations, ``data.inpainting.FaceCrops``; ``shared:faces/dlib`` names dlib's example photos in
``$OCCFACE_SHARED``; '' = synthetic only), ``inpainting.photo_fraction`` of the records. Holes:
the occluder's mask dilated by ``inpainting.dilation`` (a fraction of the image side), or with
probability ``inpainting.p_freeform`` an irregular free-form mask (``data.freeform``).
Variants: ``''`` (CPU, 128 px), ``'paper'`` (the accelerator sizes: ``image_size`` from the
stage), ``'smoke'`` (tiny, for tests).
"""

from __future__ import annotations

import ml_collections

from occface_jax.config import load_config

VARIANTS = ("", "paper", "smoke")


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} ({', '.join(map(repr, VARIANTS))})")
    c = ml_collections.ConfigDict()
    smoke = variant == "smoke"
    c.data = load_config("data", "smoke" if smoke else "")
    if not smoke:
        # The same settings as configs/mask.py, so one generated set serves the three stages.
        c.data.source = "synthetic_cached"
        c.data.size = 4000
        c.data.seed = 1
    c.data.occlusion.p_clean = 0.1
    c.data.occlusion.coverage = (0.05, 0.5)
    c.data.validation_size = 8 if smoke else 128  # the last synthetic records, held out
    if variant == "paper":
        c.data.size = 100_000
        c.data.validation_size = 1000
    c.inpainting = ml_collections.ConfigDict(
        dict(
            p_freeform=0.25,  # share of records whose hole is a free-form mask, not the occluder
            dilation=0.015,  # the occluder mask grown by this fraction of the side (its fringe)
            photos="" if smoke else "shared:faces/dlib",  # real face photos ('' = none)
            photo_fraction=0.25,  # share of training records from the photos
            seed=0,  # the holes' and the photos' occluders' randomness
        )
    )
    adam = dict(b1=0.0, b2=0.9, schedule="constant", clip_norm=0.0, weight_decay=0.0)
    c.train = ml_collections.ConfigDict(
        dict(
            batch_size=8,  # global (the stages' paper variants set theirs)
            steps={"": 1000, "paper": 200_000, "smoke": 4}[variant],
            seed=0,
            log_every=2 if smoke else 25,
            eval_every=2 if smoke else 250,
            checkpoint_every=2 if smoke else 250,
            keep_checkpoints=2,
            images=2 if smoke else 4,
            workers=8 if variant == "paper" else 0,
            # EdgeConnect: Adam(0, 0.9), lr 1e-4, the discriminator at 0.1 x the generator's.
            optim=dict(generator=dict(lr=1e-4, **adam), discriminator=dict(lr=1e-5, **adam)),
        )
    )
    return c
