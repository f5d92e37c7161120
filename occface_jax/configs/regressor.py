"""Training the coefficient regressor (the paper's ResNet-50, §3.4-3.5): ``occface train regressor``.

Input: an aligned face crop (RGB in [0, 1], ``model.input_size``); output: every coefficient of the
morphable model's ``CoeffLayout`` (``model.outputs`` of them: 246 for the default ICT model). Weakly
supervised: the prediction's face region is rendered and compared with the input through the fit's
objective (Eq. 15: ``loss.weights``, the fit's defaults), no ground-truth coefficient in the loss.
Default data: the data engine's synthetic occluded faces (``synthetic_cached``, generated once into
the cache; their ground truth only scores the evaluation), landmarks = the projected ones plus
``loss.landmark_noise_px`` of detector-like noise, occlusion = the engine's occluder mask.
Real photos: ``--set data.root=DIR`` mixes every face of the photos under ``DIR`` (recursive) into
training, ``data.photo_fraction`` (0.3) of the records: aligned as the pipeline aligns, landmarks
from a 68-point ``.pts``/``.ljson`` beside the photo (or a dlib ``*_with_face_landmarks.xml``),
else detected once (dlib HOG + 68, the ``landmarks`` extra) and cached under the cache folder
(``photo_landmarks/``), occluders pasted with ``data.occlusion``; no noise is added to their
landmarks (a detector's already). Photos have no ground truth: evaluation stays on the held-out
synthetic faces.

Variants: ``''`` (CPU: ResNet-18 at half width, 128 px, batch 8, 9000 steps: about an hour on
the 2-core CPU at the measured 0.4 s per step without the identity term, plus ~7 minutes once to
generate the 12000 records; ``experiments/results/regressor.md``), ``'paper'`` (ResNet-50, 224,
batch 32, identity term on: the accelerator config), ``'smoke'`` (tiny, for tests). Override from the command line, e.g.
``occface train regressor --set train.steps=500 --set loss.use_identity=True``.
"""

from __future__ import annotations

import ml_collections

from occface_jax.config import load_config

#: The default ICT model's CoeffLayout: id 100 + exp 53 + tex 60 + angles 3 + light 27 + translation 3.
DEFAULT_OUTPUTS = 246


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    if variant not in ("", "paper", "smoke"):
        raise ValueError(f"unknown regressor config variant {variant!r} ('', 'paper', 'smoke')")
    c = ml_collections.ConfigDict()
    c.stage = "regressor"
    c.data = load_config("data", "smoke" if variant == "smoke" else "")
    if variant != "smoke":
        c.data.source = "synthetic_cached"
        c.data.size = 12000  # generated once, then epochs (6 at 9000 steps of 8) over it
        c.data.seed = 2  # N_mask trains on seed 1; experiments draw from other seeds
    c.data.occlusion.p_clean = 0.3  # clean faces too: the regressor sees both
    c.data.occlusion.coverage = (0.05, 0.4)
    c.data.validation_size = 64  # the last records, held out, for the vertex error
    # data.root (the data config's, '' = none): a folder of real photos mixed into training,
    # photo_fraction of the records (train/tasks/regressor.py, RegressorTask.sources).
    c.data.photo_fraction = 0.3
    # data.deoccluder: a training workdir with the de-occlusion GANs trained into it (contour/,
    # synthesis/); the network then trains on I_fina, the face the GANs complete from
    # each record and its occluder mask, as the pipeline gives it with --checkpoints holding them.
    # '' = the occluded face itself.
    c.data.deoccluder = ""
    # The morphable model rendered in the loss ('' = the default model) and its coefficient layout.
    c.morphable = ml_collections.ConfigDict(dict(path="", face_only=True, light="rgb"))
    c.model = ml_collections.ConfigDict(
        dict(
            depth=18,  # 18 | 34 | 50
            width=32,  # channels of the first stage (64 in the paper's ResNet-50)
            norm="batch",  # 'batch' (running statistics at evaluation) | 'group'
            norm_groups=32,
            momentum=0.9,  # BatchNorm running averages
            input_size=int(c.data.image_size),  # the crop side the network and the renderer use
            outputs=DEFAULT_OUTPUTS,
        )
    )
    # Deng et al.'s augmentation, drawn on the device every step: rotation +-10 degrees, scale
    # 0.9-1.1, shift +-10 px at 224 (scaled to the input size) about the crop's centre.
    c.augment = ml_collections.ConfigDict(
        dict(enabled=True, shift_px=10.0, scale=0.1, rotation_deg=10.0)
    )
    fit = load_config("fit")
    weights = dict(fit.weights)
    weights.pop("dense")  # no dense landmarks in training
    c.loss = ml_collections.ConfigDict(
        dict(
            weights=weights,  # Eq. 15's lambdas and Eq. 17's w_id, w_exp, w_tex (the fit's)
            use_identity=False,  # Eq. 16 with dlib's face-ID network (landmarks extra); ~2x a step
            robust_scale=0.0,  # 0: Eq. 18 exactly (the fit uses 0.15 for occluders its mask missed)
            ambient=float(fit.ambient),
            march_jaw=bool(fit.march_jaw),
            jaw_landmark_weight=float(fit.jaw_landmark_weight),
            hidden_landmark_weight=float(fit.hidden_landmark_weight),
            # An optional warm start on the synthetic faces' ground truth, off by default (the
            # default loss is weak supervision only): this weight times the mean squared vertex
            # distance (mm^2) of the predicted shape (identity + expression) to the true one.
            # 0.01 puts it level with the landmark term at the start.
            supervised_weight=0.0,
            # The squared distance of the raw outputs to the fit's bounds (blendshapes [0, 1],
            # albedo [-3, 3]), which training renders clipped: pulls outputs back inside.
            bound_weight=1.0,
            landmark_noise_px=2.0,  # std of the noise on the synthetic landmarks, pixels at 224
            noise_seed=0,
        )
    )
    c.train = ml_collections.ConfigDict(
        dict(
            batch_size=8,  # global: split over the devices of the ('data',) mesh
            steps=9000,
            lr=3e-4,
            warmup_steps=100,
            weight_decay=1e-4,
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
        c.data.image_size = 224
        c.data.size = 100_000
        c.model.update(depth=50, width=64, input_size=224)
        c.loss.use_identity = True
        c.train.update(batch_size=32, steps=100_000, lr=1e-4, warmup_steps=1000, eval_every=2000)
        c.train.update(checkpoint_every=2000, log_every=100, workers=8)
    elif variant == "smoke":
        c.data.validation_size = 8
        c.model.update(depth=18, width=4, norm_groups=2, input_size=int(c.data.image_size))
        c.train.update(
            batch_size=8, steps=4, log_every=2, eval_every=2, checkpoint_every=2, warmup_steps=1
        )
        c.train.images = 2
    return c
