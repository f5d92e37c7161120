"""Trained networks at inference: a checkpoints folder in, predictors the pipeline calls.

A checkpoints folder is the ``--workdir`` of ``occface train``: one sub-folder per stage
(``mask/``, ...), each holding ``config.json`` (the run's config) and ``checkpoints/<step>/``
(orbax). :func:`load_stage` rebuilds a stage's model from its config and reads the newest weights;
every problem (missing folder, no checkpoint, a config or weights of another shape) is one clear
:class:`~occface_jax.errors.OccfaceError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from occface_jax.errors import OccfaceError


def load_stage(
    checkpoints: str | Path, stage: str
) -> tuple[nnx.Module, ml_collections.ConfigDict, int]:
    """(model, config, step) of ``stage`` trained into ``checkpoints/<stage>/``."""
    from occface_jax.train import get_task, restore_model

    workdir = Path(checkpoints) / stage
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise OccfaceError(
            f"{workdir}: no trained {stage} network here (expected config.json and checkpoints/ "
            f"written by `occface train {stage} --workdir {checkpoints}`)"
        )
    try:
        config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
    except (ValueError, TypeError) as err:
        raise OccfaceError(f"{config_path}: not a readable config ({err})") from err
    model, step = restore_model(get_task(stage), config, workdir)
    return model, config, step


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
        model, config, _ = load_stage(checkpoints, "mask")
        return cls(model, int(config.model.input_size), flip_average)

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        crop = np.asarray(crop, np.float32)
        if crop.ndim != 3 or crop.shape[-1] != 3:
            raise ValueError(f"the mask network takes an (S, S, 3) RGB crop, got {crop.shape}")
        return np.asarray(self._run(self._state, jnp.asarray(crop)))
