"""The training contract: what a stage declares so that :func:`occface_jax.train.loop.train` can run it.

A stage is one :class:`Task` subclass in ``train/tasks/<stage>.py`` plus one entry in
``train.tasks.TASKS``. It names its models (``models``: name -> (builder, config section); the
builders live in ``models/`` so inference rebuilds them without importing ``train/``), gives an
optimizer per model (:func:`optimizer_from_config` reads lr, betas, schedule and clipping from a config
section), and lists the phases of a step: ``Phase(loss, updates=model)`` applied in order inside one
jitted step (a GAN: discriminator, then generator), each updating only its model; ``every`` /
``offset`` alternate phases between steps. Frozen modules (a face-identity network, an upstream stage's
network listed in ``requires``) reach every loss as constants and are never trained.

Every loss and evaluation function takes ``(models, frozen, batch, ...)``: ``models`` and ``frozen``
are dicts name -> nnx.Module; the loop has put ``models`` in training mode (``model.train()``:
BatchNorm batch statistics, dropout on) for the losses and everything in evaluation mode
(``model.eval()``) for ``evaluate`` / ``images`` and for the frozen modules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import ml_collections
import optax
from flax import nnx

from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.inpainting import FaceCrops
from occface_jax.data.pipeline import source_from_config, split_validation
from occface_jax.errors import OccfaceError
from occface_jax.io.checkpoints import ModelSpec

Batch = dict[str, Any]
Metrics = dict[str, jax.Array]
Models = dict[str, nnx.Module]
#: ``loss(models, frozen, batch, key, config) -> (scalar loss, scalar metrics)``
Loss = Callable[[Models, Models, Batch, jax.Array, ml_collections.ConfigDict], tuple[Any, Metrics]]


@dataclasses.dataclass(frozen=True)
class Phase:
    """One update inside a step: the gradient of ``loss`` with respect to model ``updates``' parameters
    (only), applied by that model's optimizer. It runs on the steps ``s`` with ``s % every ==
    offset``. Its metrics are logged as ``<name>/<metric>`` (bare names when the task has one
    phase)."""

    loss: Loss
    updates: str
    name: str = ""
    every: int = 1
    offset: int = 0

    @property
    def label(self) -> str:
        return self.name or self.updates


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """An optax transformation and its learning-rate schedule (logged as ``lr/<model>``)."""

    tx: optax.GradientTransformation
    schedule: Callable[[int], Any]


def optimizer_from_config(section: ml_collections.ConfigDict, steps: int) -> Optimizer:
    """Adam(W) from a config section: ``lr``, ``b1`` (0.9), ``b2`` (0.999), ``weight_decay`` (0),
    ``schedule`` (``'cosine'``: linear warm-up over ``warmup_steps`` then cosine decay to 0 at
    ``steps``; ``'constant'``), ``clip_norm`` (global-norm clipping, 1.0; 0 = none)."""
    lr = float(section.lr)
    warmup = int(section.get("warmup_steps", 0))
    kind = section.get("schedule", "cosine")
    if kind == "cosine":
        schedule = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1))
    elif kind == "constant":
        schedule = optax.constant_schedule(lr)
    else:
        raise ValueError(f"unknown learning-rate schedule {kind!r} ('cosine' or 'constant')")
    adam = optax.adamw(
        schedule,
        b1=float(section.get("b1", 0.9)),
        b2=float(section.get("b2", 0.999)),
        weight_decay=float(section.get("weight_decay", 0.0)),
    )
    clip = float(section.get("clip_norm", 1.0))
    return Optimizer(optax.chain(optax.clip_by_global_norm(clip), adam) if clip else adam, schedule)


def photo_crops(data: ml_collections.ConfigDict) -> tuple[FaceCrops | None, float]:
    """The real photos a stage mixes into its synthetic records: (every face of ``data.root``,
    annotated or detected once, at ``data.image_size``; ``data.photo_fraction``), or (None, 0)
    when there is no root or no share. One line when the share is outside [0, 1] or the folder
    has no usable face."""
    root = str(data.get("root", "") or "")
    fraction = float(data.get("photo_fraction", 0.0))
    if not 0.0 <= fraction <= 1.0:
        raise OccfaceError(f"data.photo_fraction={fraction}: a share in [0, 1]")
    if not root or fraction == 0.0:
        return None, 0.0
    try:
        return FaceCrops(root, int(data.image_size), detect=True), fraction
    except DatasetLayoutError as err:
        raise DatasetLayoutError(f"data.root: {str(err).splitlines()[0]}") from err


class Task:
    """Base of every stage (subclass it; override what the stage needs)."""

    name: str = ""
    #: model name -> (builder(config[section], rngs), section); the checkpoint items are these names
    models: Mapping[str, ModelSpec] = {}
    #: upstream stages whose trained models are loaded (from ``WORKDIR/<stage>/``) as frozen inputs
    requires: tuple[str, ...] = ()
    #: config sections that define the networks: a checkpoint is refused when they differ
    architecture: tuple[str, ...] = ("model",)

    def required_stages(self, config: ml_collections.ConfigDict) -> tuple[str, ...]:
        """The upstream stages this run loads frozen (default: ``requires``); a stage whose inputs
        depend on its config (e.g. N_syn fine-tuned on N_cont's contours) overrides it."""
        return tuple(self.requires)

    def sources(self, config: ml_collections.ConfigDict) -> tuple[Any, Any]:
        """(training, evaluation) random-access record sources (default: ``config.data``'s source,
        its last ``config.data.validation_size`` records held out for evaluation; None = none)."""
        source = source_from_config(config.data)
        train, held_out = split_validation(source, int(config.data.validation_size))
        return train, (held_out if len(held_out) else None)

    def optimizers(self, config: ml_collections.ConfigDict) -> dict[str, Optimizer]:
        """One optimizer per model in ``models`` (default: Adam from ``config.train``)."""
        steps = int(config.train.steps)
        return {name: optimizer_from_config(config.train, steps) for name in self.models}

    def phases(self, config: ml_collections.ConfigDict) -> Sequence[Phase]:
        raise NotImplementedError

    def frozen(self, config: ml_collections.ConfigDict, upstream: dict[str, Models]) -> Models:
        """Modules the losses use but never train; ``upstream`` holds the models of the stages in
        ``requires`` (stage -> name -> module), already trained."""
        return {f"{stage}.{name}": m for stage, ms in upstream.items() for name, m in ms.items()}

    def make_batch(self, records: Batch, config: ml_collections.ConfigDict) -> Batch:
        """Host records (numpy, stacked) -> the arrays the step takes (numpy, leading batch axis)."""
        return records

    def evaluate(
        self, models: Models, frozen: Models, batch: Batch, config: ml_collections.ConfigDict
    ) -> Metrics:
        """Per-example metrics, each (B,), for one evaluation batch (inside jit)."""
        return {}

    def images(
        self, models: Models, frozen: Models, batch: Batch, config: ml_collections.ConfigDict
    ) -> dict[str, jax.Array]:
        """Pictures logged to TensorBoard at evaluation: name -> (B, H, W) or (B, H, W, 3) in
        [0, 1] (e.g. input, prediction, target); the loop keeps the first few examples."""
        return {}
