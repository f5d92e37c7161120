"""Trained networks at inference: a checkpoints folder in, predictors the pipeline calls.

A checkpoints folder is the ``--workdir`` of ``occface train``: one sub-folder per stage
(``mask/``, ...), each holding ``config.json`` (the run's config) and ``checkpoints/<step>/``
(orbax, ``occface_jax.io.checkpoints``). :func:`load_stage` rebuilds a stage's models from its config
(builders in ``models/``) and reads the newest weights; every problem (missing folder, no
checkpoint, a config that differs from the one the checkpoint was trained with, weights of another
shape, a truncated or corrupted file) is one clear :class:`~occface_jax.errors.OccfaceError`.
Checkpoints written before the task contract (items ``model``/``optimizer``/``data``) still load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from occface_jax.errors import OccfaceError
from occface_jax.fit.fitter import project_constraints
from occface_jax.io.checkpoints import ModelSpec, load_models
from occface_jax.models.resnet import build_resnet
from occface_jax.models.unet import build_unet
from occface_jax.morphable import CoeffLayout, MorphableModel

#: What inference rebuilds per stage: model name -> (builder in ``models/``, config section). The
#: same specs as the stage's training task (``train/tasks/<stage>.py``), which app/ never imports.
STAGE_MODELS: dict[str, dict[str, ModelSpec]] = {
    "mask": {"unet": (build_unet, "model")},
    "regressor": {"resnet": (build_resnet, "model")},
}
#: The config sections that define a stage's networks (checked against the checkpoint's).
STAGE_ARCHITECTURE: dict[str, tuple[str, ...]] = {
    "mask": ("model",),
    "regressor": ("model", "morphable"),
}


def load_stage(
    checkpoints: str | Path, stage: str
) -> tuple[dict[str, nnx.Module], ml_collections.ConfigDict, int]:
    """(models by name, config, step) of ``stage`` trained into ``checkpoints/<stage>/``, the
    models in evaluation mode. The checkpoint's stored config must match ``config.json``'s model
    sections; its files must match their manifest."""
    if stage not in STAGE_MODELS:
        raise OccfaceError(f"no inference for stage {stage!r}; known: {', '.join(STAGE_MODELS)}")
    return load_models(
        Path(checkpoints) / stage, stage, STAGE_MODELS[stage], STAGE_ARCHITECTURE[stage]
    )


class MaskPredictor:
    """N_mask on aligned crops: ``predictor(crop (S, S, 3) in [0, 1]) -> (S, S)`` occluder
    probability. The crop is resized to the network's input size and the map back to S x S. With
    ``flip_average`` the probabilities of the crop and of its mirror image (mirrored back) are
    averaged (the network was trained with random flips); on synthetic fits it made no reliable
    difference (``experiments/results/synthetic_fit.md``), so it is off by default."""

    def __init__(self, model: nnx.Module, input_size: int, flip_average: bool = False) -> None:
        self.input_size = int(input_size)
        graphdef, state = nnx.split(model)

        def run(state: Any, crop: jax.Array) -> jax.Array:
            net = nnx.merge(graphdef, state)
            size = crop.shape[:2]
            small = jax.image.resize(
                crop, (self.input_size, self.input_size, 3), "linear", antialias=True
            )
            if flip_average:
                both = jax.nn.sigmoid(net(jnp.stack([small, small[:, ::-1]])))
                prob = 0.5 * (both[0] + both[1][:, ::-1])
            else:
                prob = jax.nn.sigmoid(net(small[None]))[0]
            return jax.image.resize(prob, size, "linear")

        self._state = state
        self._run = jax.jit(run)

    @classmethod
    def from_checkpoints(cls, checkpoints: str | Path, flip_average: bool = False) -> MaskPredictor:
        models, config, _ = load_stage(checkpoints, "mask")
        return cls(models["unet"], int(config.model.input_size), flip_average)

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        crop = np.asarray(crop, np.float32)
        if crop.ndim != 3 or crop.shape[-1] != 3:
            raise ValueError(f"the mask network takes an (S, S, 3) RGB crop, got {crop.shape}")
        return np.asarray(self._run(self._state, jnp.asarray(crop)))


class RegressorPredictor:
    """The coefficient regressor on aligned crops: ``predictor(crop (S, S, 3) in [0, 1]) ->``
    coefficient blocks (numpy, ``CoeffLayout.split`` keys) of ``model``, in the crop's Deng
    camera (the crop is resized to the network's input; the camera scales with the size, so the
    coefficients hold for any S). The fit's bounds apply (``fit.fitter.project_constraints``:
    blendshape weights in [0, 1], albedo in [-3, 3]). ``model`` must have the layout the network
    was trained for (one clear error otherwise)."""

    def __init__(
        self, net: nnx.Module, input_size: int, model: MorphableModel, light: str = "rgb"
    ) -> None:
        self.input_size = int(input_size)
        self.layout = CoeffLayout.for_model(model, light=light)
        outputs = int(net.head.kernel.shape[-1])
        if outputs != self.layout.size:
            raise OccfaceError(
                f"the regressor predicts {outputs} coefficients, the morphable model "
                f"{model.name!r} has {self.layout.size}: trained for another model"
            )
        exp_kind = model.exp_kind
        graphdef, state = nnx.split(net)

        def run(state: Any, crop: jax.Array) -> dict[str, jax.Array]:
            network = nnx.merge(graphdef, state)
            size = (self.input_size, self.input_size, 3)
            small = jax.image.resize(crop, size, "linear", antialias=True)
            return project_constraints(self.layout.split(network(small[None])[0]), exp_kind)

        self._state = state
        self._run = jax.jit(run)

    @classmethod
    def from_checkpoints(cls, checkpoints: str | Path, model: MorphableModel) -> RegressorPredictor:
        models, config, _ = load_stage(checkpoints, "regressor")
        light = str(config.get("morphable", {}).get("light", "rgb"))
        return cls(models["resnet"], int(config.model.input_size), model, light)

    def __call__(self, crop: np.ndarray) -> dict[str, np.ndarray]:
        crop = np.asarray(crop, np.float32)
        if crop.ndim != 3 or crop.shape[-1] != 3:
            raise ValueError(f"the regressor takes an (S, S, 3) RGB crop, got {crop.shape}")
        return {k: np.asarray(v) for k, v in self._run(self._state, jnp.asarray(crop)).items()}
