"""One training loop for every stage: data-parallel jit over a ``('data',)`` mesh, orbax checkpoints
that resume exactly (model, optimizer and data position), metrics to a JSON-lines file, a progress bar.

A stage is a :class:`Task` (see ``occface_jax.train.tasks.mask`` for one): it builds its Flax NNX model, turns
host records into a batch of arrays, and defines its loss and evaluation as functions of (model,
batch). The loop owns everything else:

- Parallelism: the model and optimizer state are replicated (``NamedSharding(mesh, P())``), each batch
  is split along its first axis over the mesh's ``data`` axis (``P('data')``); one ``jax.jit`` step
  with the state donated. XLA inserts the gradient all-reduce. Multi-host: call
  ``jax.distributed.initialize()`` first; every process reads its own shard of the data
  (``grain.sharding.ShardByJaxProcess``) and ``make_array_from_process_local_data`` assembles it.
- State is created already sharded: shapes from ``nnx.eval_shape``, values from a jitted init with
  ``out_shardings``, or restored from the newest checkpoint into those shapes.
- Randomness of step ``s`` is ``fold_in(key(seed), s)``: a resumed run draws what an uninterrupted one
  would have.
- Work directory: ``config.json`` (the run's config), ``checkpoints/<step>/`` (orbax; items
  ``model``, ``optimizer``, ``data``), ``metrics.jsonl`` (one JSON object per logged step / evaluation).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from grain.sharding import ShardByJaxProcess
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from occface_jax.errors import OccfaceError

Batch = dict[str, Any]
Metrics = dict[str, jax.Array]


class Task(Protocol):
    """What a training stage supplies to :func:`train`."""

    name: str

    def build_model(self, config: ml_collections.ConfigDict, rngs: nnx.Rngs) -> nnx.Module:
        """The stage's network, freshly initialised."""

    def make_batch(self, records: Batch, config: ml_collections.ConfigDict) -> Batch:
        """Host records (numpy, stacked) -> the arrays the step takes (numpy, leading batch axis)."""

    def loss(
        self, model: nnx.Module, batch: Batch, key: jax.Array, config: ml_collections.ConfigDict
    ) -> tuple[jax.Array, Metrics]:
        """Scalar training loss and scalar metrics for one global batch (inside jit)."""

    def evaluate(
        self, model: nnx.Module, batch: Batch, config: ml_collections.ConfigDict
    ) -> Metrics:
        """Per-example metrics, each (B,), for one evaluation batch (inside jit)."""


@dataclasses.dataclass
class TrainResult:
    """How a :func:`train` call ended."""

    step: int  # the last completed step
    metrics: dict[str, float]  # the last logged training metrics
    evaluation: dict[str, float]  # the last evaluation (empty when none ran)
    workdir: Path


def make_mesh(devices: Iterable[jax.Device] | None = None) -> Mesh:
    """A 1-D ``('data',)`` mesh over ``devices`` (default: all devices of all processes)."""
    devices = np.asarray(list(devices) if devices is not None else jax.devices())
    return Mesh(devices, ("data",))


def make_optimizer(train_config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """AdamW with linear warm-up and cosine decay to 0 over ``steps``; global-norm clipping at 1."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        float(train_config.lr),
        int(train_config.warmup_steps),
        max(int(train_config.steps), int(train_config.warmup_steps) + 1),
    )
    return optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(schedule, weight_decay=float(train_config.weight_decay)),
    )


def checkpoint_manager(workdir: Path, keep: int = 2) -> ocp.CheckpointManager:
    """The orbax manager of ``workdir/checkpoints`` (keeps the ``keep`` newest)."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    return ocp.CheckpointManager((Path(workdir) / "checkpoints").absolute(), options=options)


def _abstract(tree: Any, sharding: NamedSharding) -> Any:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def _check_stored_shapes(manager: ocp.CheckpointManager, step: int, item: str, tree: Any) -> None:
    """Raise OccfaceError when checkpoint ``step``'s ``item`` holds arrays of other shapes than
    ``tree`` (checked on the stored metadata, before orbax reads any array)."""
    stored = ocp.StandardCheckpointer().metadata(Path(manager.directory) / str(step) / item)
    stored = getattr(stored, "item_metadata", stored)
    have = sorted(tuple(x.shape) for x in jax.tree.leaves(stored))
    want = sorted(tuple(x.shape) for x in jax.tree.leaves(tree))
    if have != want:
        extra = sorted(set(have) - set(want))[:3]
        raise OccfaceError(
            f"checkpoint {step} in {manager.directory} does not fit this config's model: it holds "
            f"{len(have)} arrays, the model {len(want)}; stored shapes such as {extra} are not in "
            "the model (another model config?)"
        )


def restore_model(
    task: Task,
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    step: int | None = None,
) -> tuple[nnx.Module, int]:
    """The stage's model with the weights of checkpoint ``step`` (newest when None) of ``workdir``,
    on the default device, and that step. Only the ``model`` item is read."""
    manager = checkpoint_manager(Path(workdir))
    step = manager.latest_step() if step is None else step
    if step is None:
        raise OccfaceError(f"no checkpoint in {Path(workdir) / 'checkpoints'}")
    graphdef, state = nnx.split(nnx.eval_shape(lambda: task.build_model(config, nnx.Rngs(0))))
    device = NamedSharding(make_mesh(jax.local_devices()[:1]), P())
    _check_stored_shapes(manager, step, "model", state)
    restored = manager.restore(
        step, args=ocp.args.Composite(model=ocp.args.StandardRestore(_abstract(state, device)))
    )
    return nnx.merge(graphdef, restored["model"]), int(step)


def _to_global(batch: Batch, sharding: NamedSharding) -> Batch:
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()
    }


def _evaluate(
    evaluate: Callable, state: Any, batches: Iterable[Batch], sharding: NamedSharding
) -> dict[str, float]:
    sums: dict[str, float] = {}
    count = 0
    for batch in batches:
        values = evaluate(state, _to_global(batch, sharding))
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + float(jnp.sum(v))
        count += len(next(iter(batch.values()))) * jax.process_count()  # sums are global
    return {k: v / max(count, 1) for k, v in sums.items()}


def train(
    task: Task,
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    train_source: Any,
    eval_source: Any = None,
    *,
    devices: Iterable[jax.Device] | None = None,
    stop_at: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``task`` on ``train_source`` (random-access records) for ``config.train.steps`` steps,
    resuming from ``workdir``'s newest checkpoint. ``stop_at`` ends the call early after that step
    (with a checkpoint), as a crash would; the next call goes on from there. ``eval_source`` is
    evaluated every ``eval_every`` steps and at the end."""
    from occface_jax.data.pipeline import data_loader

    tc = config.train
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = make_mesh(devices)
    n_devices = mesh.devices.size
    batch_size = int(tc.batch_size)
    if batch_size % n_devices:
        raise OccfaceError(f"batch size {batch_size} is not divisible by {n_devices} devices")
    if jax.process_count() > 1 and batch_size % jax.process_count():
        raise OccfaceError(f"batch size {batch_size} is not divisible by the process count")
    local_batch = batch_size // jax.process_count()
    replicated = NamedSharding(mesh, P())
    data_sharding = NamedSharding(mesh, P("data"))
    tx = make_optimizer(tc)
    seed = int(tc.seed)

    def build() -> tuple[nnx.Module, nnx.Optimizer]:
        model = task.build_model(config, nnx.Rngs(seed))
        return model, nnx.Optimizer(model, tx, wrt=nnx.Param)

    graphdef, abstract_state = nnx.split(nnx.eval_shape(build))
    manager = checkpoint_manager(workdir, int(tc.keep_checkpoints))
    shard = ShardByJaxProcess(drop_remainder=True) if jax.process_count() > 1 else None
    loader = data_loader(
        train_source,
        local_batch,
        shard_options=shard,
        seed=seed,
        num_epochs=None,
        worker_count=int(tc.get("workers", 0)),
    )
    iterator = iter(loader)
    start = manager.latest_step()
    if start is None:
        state = jax.jit(lambda: nnx.split(build())[1], out_shardings=replicated)()
        start = 0
    else:
        _check_stored_shapes(manager, start, "model", abstract_state[0])
        restored = manager.restore(
            start,
            args=ocp.args.Composite(
                model=ocp.args.StandardRestore(_abstract(abstract_state[0], replicated)),
                optimizer=ocp.args.StandardRestore(_abstract(abstract_state[1], replicated)),
                data=ocp.args.JsonRestore(),
            ),
        )
        state = nnx.State({0: restored["model"], 1: restored["optimizer"]})
        iterator.set_state(json.dumps(restored["data"]).encode())

    # The config of the latest call (a resumed run may extend train.steps); inference reads it.
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))

    def step_fn(state: Any, batch: Batch, step: jax.Array) -> tuple[Any, Metrics]:
        model, optimizer = nnx.merge(graphdef, state)
        key = jax.random.fold_in(jax.random.key(seed), step)
        (loss, metrics), grads = nnx.value_and_grad(
            lambda m: task.loss(m, batch, key, config), has_aux=True
        )(model)
        optimizer.update(model, grads)
        metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
        return nnx.state((model, optimizer)), metrics

    def eval_fn(state: Any, batch: Batch) -> Metrics:
        model, _ = nnx.merge(graphdef, state)
        return task.evaluate(model, batch, config)

    step_jit = jax.jit(
        step_fn,
        in_shardings=(replicated, data_sharding, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    eval_jit = jax.jit(eval_fn, in_shardings=(replicated, data_sharding))

    def eval_batches() -> Iterable[Batch]:
        if eval_source is None:
            return []
        records = data_loader(eval_source, local_batch, shuffle=False, num_epochs=1)
        return (task.make_batch(r, config) for r in records)

    def save(step: int) -> None:
        manager.save(
            step,
            args=ocp.args.Composite(
                model=ocp.args.StandardSave(state[0]),
                optimizer=ocp.args.StandardSave(state[1]),
                data=ocp.args.JsonSave(json.loads(iterator.get_state())),
            ),
            force=True,
        )
        manager.wait_until_finished()

    total = int(tc.steps)
    end = min(total, stop_at) if stop_at is not None else total
    log = (workdir / "metrics.jsonl").open("a")
    last: dict[str, float] = {}
    evaluation: dict[str, float] = {}
    bar = _progress(progress and jax.process_index() == 0, start, total, task.name)
    began = time.perf_counter()
    step = start
    try:
        while step < end:
            batch = _to_global(task.make_batch(next(iterator), config), data_sharding)
            state, metrics = step_jit(state, batch, jnp.asarray(step, jnp.int32))
            step += 1
            bar.update(1)
            if step % int(tc.log_every) == 0 or step == end:
                last = {k: float(v) for k, v in metrics.items()}
                bar.set_postfix(loss=f"{last['loss']:.4f}")
                _write(log, dict(step=step, seconds=time.perf_counter() - began, **last))
            if step % int(tc.eval_every) == 0 or step == total:
                if eval_source is not None:
                    evaluation = _evaluate(eval_jit, state, eval_batches(), data_sharding)
                    _write(log, dict(step=step, eval=evaluation))
            if step % int(tc.checkpoint_every) == 0 or step == end:
                save(step)
    except KeyboardInterrupt:
        if step > start:
            save(step)  # nothing lost: the next run resumes here
        raise
    finally:
        bar.close()
        log.close()
    return TrainResult(step=step, metrics=last, evaluation=evaluation, workdir=workdir)


def _write(log: Any, entry: dict[str, Any]) -> None:
    log.write(json.dumps(entry) + "\n")
    log.flush()


def _progress(enabled: bool, start: int, total: int, name: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=f"train {name}", unit="step", disable=not enabled)
