"""Training the occlusion-robust face mesh (self-distillation of MediaPipe's 468-point network,
``train/tasks/face_mesh.py``): ``occface train face_mesh``.

Data: the data engine's synthetic faces, each clean and with occluders (``synthetic_cached``: the
same 12000 records the regressor trains on, generated once into the cache, 128 px; the crops are
upsampled to the network's 192). ``--set data.root=DIR`` mixes in every face of a folder of
photos (68 points in ``.pts``/``.ljson`` beside them or a dlib XML, else detected once; occluders
pasted with ``data.occlusion``), ``data.photo_fraction`` of the records. The trained student becomes the pipeline's face mesh through
``python tools/export_face_mesh.py WORKDIR/face_mesh OUT.npz`` and ``--set mesh_weights=OUT.npz``.

Variants: ``''`` (CPU: batch 32, 1200 steps), ``'paper'`` (accelerator: batch 128, 20000 steps at
224 px data), ``'smoke'`` (tiny, for tests).
"""

from __future__ import annotations

import ml_collections

from occface_jax.config import load_config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("", "paper", "smoke"):
        raise ValueError(f"unknown face_mesh config variant {variant!r} ('', 'paper', 'smoke')")
    c = ml_collections.ConfigDict()
    c.stage = "face_mesh"
    c.data = load_config("data", "smoke" if variant == "smoke" else "")
    if variant != "smoke":
        c.data.source = "synthetic_cached"
        c.data.size = 12000  # the regressor's records (same seed and settings: the same cache)
        c.data.seed = 2
        c.data.occlusion.p_clean = 0.3  # clean faces too: the student must not drift on them
        c.data.occlusion.coverage = (0.05, 0.4)
    if variant == "paper":
        c.data.size = 100_000
        c.data.image_size = 224
        c.data.seed = 3
    c.data.validation_size = 64  # the last records, held out, for the evaluation
    # data.root (the data config's, '' = none): a folder of real face photos mixed into training,
    # photo_fraction of the records (annotated 68 points beside them or in dlib XMLs, else
    # detected once; a new occluder draw per record).
    c.data.photo_fraction = 0.5
    # weights: the network both teacher and student start from ('' = MediaPipe's, as shipped).
    c.model = ml_collections.ConfigDict(dict(weights=""))
    c.loss = ml_collections.ConfigDict(
        dict(
            z_weight=0.2,  # the depth coordinate's L1 (percent of the crop) relative to x, y
            presence_weight=1.0,  # BCE of the presence logit against the teacher's clean presence
            # The same distillation on the clean crop, this much of the occluded one's: keeps the
            # student on the teacher where nothing is occluded (it drifted 1.4 px without).
            clean_weight=1.0,
            # Region jitter, as the region search varies its crops: side scale range, centre shift
            # (fraction of the side, each axis), rotation (degrees, either way).
            # far_fraction of the crops far off the face instead (far_scale, far_shift): without
            # them the student called nearly every crop a face and the region search drifted to
            # a neighbouring face in a group photo (experiments/results/face_mesh_occlusion.md).
            jitter=ml_collections.ConfigDict(
                dict(
                    scale=(0.85, 1.2),
                    shift=0.1,
                    rotation_deg=15.0,
                    far_fraction=0.25,
                    far_scale=(0.5, 2.0),
                    far_shift=0.6,
                )
            ),
            color=0.2,  # brightness / contrast / gamma range (same on both crops)
        )
    )
    c.train = ml_collections.ConfigDict(
        dict(
            batch_size=32,  # global: split over the devices of the ('data',) mesh
            steps=1200,  # 38400 crops, 3 epochs of the records; ~35 minutes on the 2-core CPU
            lr=1e-4,  # fine-tuning: small steps from the pretrained network
            warmup_steps=100,
            weight_decay=0.0,
            seed=0,
            log_every=25,
            eval_every=250,
            checkpoint_every=250,
            keep_checkpoints=2,
            images=4,
            workers=0,
        )
    )
    if variant == "paper":
        c.train.update(batch_size=128, steps=20000, lr=2e-4, workers=4)
    if variant == "smoke":
        c.data.validation_size = 4
        c.train.update(
            batch_size=4, steps=4, log_every=2, eval_every=2, checkpoint_every=2, warmup_steps=1
        )
    return c
