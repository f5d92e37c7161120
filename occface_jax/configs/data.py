"""The data engine's settings: which source feeds a stage and how it is occluded.

``get_config()`` is synthetic faces at 128 px; variants: ``'photos'`` (occlusion augmentation of a
folder of face photos), ``'celebamask'`` (CelebAMask-HQ with occluders pasted, the paper's mask data),
``'smoke'`` (tiny, for CPU tests). Build the source with
``occface_jax.data.pipeline.source_from_config(config)``.

A stage's config holds this one as ``data``; override from the command line, typed as each default
(``occface_jax.config.apply_overrides``): ``occface train mask --set data.image_size=96 --set
data.occlusion.coverage=0.1,0.3 --set data.occlusion.kinds=hand,cup`` (a tuple of strings may change
length, a tuple of numbers may not; sizes must be >= 1, ``count`` items and ``seed`` >= 0).
"""

from __future__ import annotations

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.source = "synthetic"  # 'synthetic' | 'photos' | 'celebamask'
    c.root = ""  # folder of photos or CelebAMask-HQ root (photos / celebamask sources)
    c.image_size = 128  # 128 for CPU training; 224 / 256 / 512 for the paper's stages
    c.seed = 0
    c.size = 1_000_000  # number of synthetic samples (index space)
    c.occlusion = ml_collections.ConfigDict(
        dict(
            kinds=(
                "glasses",
                "sunglasses",
                "hand",
                "food",
                "cup",
                "phone",
                "microphone",
                "medical_mask",
                "hair",
                "cutout",
            ),
            count=(1, 2),
            coverage=(0.1, 0.45),  # fraction of the face region under the mask
            p_clean=0.0,
        )
    )
    c.synth = ml_collections.ConfigDict(
        dict(max_angles_deg=(15.0, 35.0, 10.0), exp_active=(0, 8), p_photo_background=0.6)
    )
    if variant == "photos":
        c.source = "photos"
    elif variant == "celebamask":
        c.source = "celebamask"
        c.image_size = 256
    elif variant == "smoke":
        c.image_size = 64
        c.size = 64
    elif variant:
        raise ValueError(f"unknown data config variant {variant!r}")
    return c
