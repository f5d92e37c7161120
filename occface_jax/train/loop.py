"""One training loop for every stage: data-parallel jit over a ``('data',)`` mesh, orbax checkpoints
that resume exactly, metrics to ``metrics.jsonl`` and TensorBoard, a progress bar.

A stage is a :class:`~occface_jax.train.task.Task` (``train/tasks/<stage>.py``): named models and
their optimizers, the phases of a step, frozen inputs, upstream stages. The loop owns the rest:

- Parallelism: models, optimizers and frozen modules replicated (``NamedSharding(mesh, P())``), each
  batch split along its first axis over the mesh's ``data`` axis (``P('data')``); one ``jax.jit``
  step (all phases in order) with the state donated; XLA inserts the gradient all-reduce. Multi-host:
  ``jax.distributed.initialize()`` first; every process reads its rows of the same global batches
  (``train.data``) and ``make_array_from_process_local_data`` assembles them; only process 0 writes
  logs and files (orbax coordinates the checkpoint writes).
- State is created already sharded: shapes from ``nnx.eval_shape``, values from a jitted init with
  ``out_shardings``, or restored from the newest checkpoint into those shapes. A checkpoint whose
  ``task.architecture`` config sections differ from the config in hand is refused before anything is
  written.
- Randomness of step ``s`` is ``fold_in(key(seed), s)`` (phase i > 0: ``fold_in`` of that with i):
  a resumed run draws what an uninterrupted one would have; the data position and the elapsed time
  are in the checkpoint, and the log lines after the restored step are dropped on resume, so
  ``metrics.jsonl`` and the event files hold each step once.
- Work directory: ``config.json``, ``checkpoints/<step>/`` (``occface_jax.io.checkpoints``),
  ``metrics.jsonl`` (one JSON object per logged step / evaluation), ``events.out.tfevents.*``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from occface_jax.errors import OccfaceError
from occface_jax.io import checkpoints as ckpt
from occface_jax.train.data import eval_batches, train_loader
from occface_jax.train.task import Task
from occface_jax.train.tasks import TASKS
from occface_jax.train.tensorboard import EventWriter, truncate_events

#: Test hook: the loop SIGKILLs its own process right after this step (and its checkpoint, if any).
KILL_AFTER_STEP = "OCCFACE_TRAIN_KILL_AFTER_STEP"


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


def restore_models(
    task: Task, config: ml_collections.ConfigDict, workdir: str | Path, step: int | None = None
) -> tuple[dict[str, nnx.Module], int]:
    """The stage's models (evaluation mode, default device) with the weights of checkpoint ``step``
    (newest when None) of ``workdir``, and that step."""
    models, _, step = ckpt.load_models(
        workdir, task.name, task.models, task.architecture, config=config, step=step
    )
    return models, step


def _replicate(tree: Any, sharding: NamedSharding) -> Any:
    """Host-identical values -> arrays replicated over ``sharding``'s mesh (any process count)."""

    def put(x: Any) -> jax.Array:
        key = jnp.issubdtype(x.dtype, jax.dtypes.prng_key)  # e.g. a dropout stream's key
        value = np.asarray(jax.random.key_data(x) if key else x)
        array = jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])
        return jax.random.wrap_key_data(array, impl=jax.random.key_impl(x)) if key else array

    return jax.tree.map(put, tree)


def _upstream(
    task: Task, config: ml_collections.ConfigDict, workdir: Path
) -> dict[str, dict[str, nnx.Module]]:
    """The trained models of the stages ``task`` requires, from ``workdir``'s sibling folders."""
    out = {}
    for stage in task.required_stages(config):
        upstream = TASKS[stage]()
        out[stage], _, _ = ckpt.load_models(
            workdir.parent / stage, stage, upstream.models, upstream.architecture
        )
    return out


def _check_batches(config: ml_collections.ConfigDict, mesh: Mesh) -> tuple[int, int]:
    batch = int(config.train.batch_size)
    eval_batch = int(config.train.get("eval_batch_size", batch))
    for name, size in (("batch size", batch), ("evaluation batch size", eval_batch)):
        if size % mesh.devices.size:
            raise OccfaceError(f"{name} {size} is not divisible by {mesh.devices.size} devices")
        if size % jax.process_count():
            raise OccfaceError(
                f"{name} {size} is not divisible by the {jax.process_count()} processes"
            )
    return batch, eval_batch


def _truncate_jsonl(path: Path, step: int) -> None:
    """Keep the lines of ``path`` up to ``step`` (a torn last line goes too)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    path.write_text("".join(x + "\n" for x in kept))


def _tile(images: np.ndarray) -> np.ndarray:
    """(N, H, W[, C]) -> (H, N*W[, C]): the examples side by side."""
    return np.concatenate(list(np.asarray(images, np.float32)), axis=1)


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
    tc = config.train
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise OccfaceError(f"workdir {workdir} is a file, not a folder")
    mesh = make_mesh(devices)
    batch_size, eval_batch_size = _check_batches(config, mesh)
    if len(train_source) < batch_size:
        raise OccfaceError(
            f"{len(train_source)} training records, fewer than a batch ({batch_size})"
        )
    process, processes = jax.process_index(), jax.process_count()
    writer0 = process == 0
    replicated = NamedSharding(mesh, P())
    data_sharding = NamedSharding(mesh, P("data"))
    seed = int(tc.seed)
    names = list(task.models)
    optimizers = task.optimizers(config)
    phases = list(task.phases(config))
    unknown = sorted({p.updates for p in phases} - set(names))
    if unknown or set(optimizers) != set(names):
        raise ValueError(
            f"task {task.name}: phases update {unknown}, optimizers {sorted(optimizers)}"
        )

    def build() -> tuple[dict[str, nnx.Module], dict[str, nnx.Optimizer]]:
        models = ckpt.build_models(task.models, config, seed)
        opts = {n: nnx.Optimizer(models[n], optimizers[n].tx, wrt=nnx.Param) for n in names}
        return models, opts

    graphdef, abstract_state = nnx.split(nnx.eval_shape(build))
    workdir.mkdir(parents=True, exist_ok=True)
    manager = ckpt.manager(workdir / "checkpoints", int(tc.keep_checkpoints))
    start = manager.latest_step()
    if start is not None:
        where = f"checkpoint {ckpt.step_dir(manager, start)}"
        present = ckpt.items(manager, start)
        if ckpt.META not in present:
            raise OccfaceError(
                f"{where} is of the old format (items {', '.join(sorted(present))}): it still "
                "loads for inference but cannot resume; train into another workdir"
            )
        meta = ckpt.read_document(manager, start, ckpt.META)
        ckpt.check_config(meta["config"], config, task.architecture, where)
    iterator = iter(
        train_loader(train_source, batch_size, process, processes, seed, int(tc.get("workers", 0)))
    )
    elapsed = 0.0
    if start is None:
        state = jax.jit(lambda: nnx.split(build())[1], out_shardings=replicated)()
        start = 0
    else:
        arrays = {n: ckpt.abstract(abstract_state[0][n], replicated) for n in names}
        arrays.update(
            {ckpt.optimizer_item(n): ckpt.abstract(abstract_state[1][n], replicated) for n in names}
        )
        restored = ckpt.restore(manager, start, arrays, (ckpt.DATA,))
        state = nnx.State(
            {
                0: nnx.State({n: restored[n] for n in names}),
                1: nnx.State({n: restored[ckpt.optimizer_item(n)] for n in names}),
            }
        )
        iterator.set_state(json.dumps(restored[ckpt.DATA]).encode())
        elapsed = float(meta.get("elapsed_seconds", 0.0))
    frozen_graphdef, frozen_state = nnx.split(task.frozen(config, _upstream(task, config, workdir)))
    frozen_state = _replicate(frozen_state, replicated)

    log = None
    writer = None
    if writer0:
        # The config of the latest call (a resumed run may extend train.steps); inference reads it.
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
        _truncate_jsonl(workdir / "metrics.jsonl", start)
        truncate_events(workdir, start)
        log = (workdir / "metrics.jsonl").open("a")
        writer = EventWriter(workdir)

    single = len(phases) == 1

    def merged(state: Any, frozen_state: Any, training: bool) -> tuple[dict, dict, dict]:
        models, opts = nnx.merge(graphdef, state)
        frozen = nnx.merge(frozen_graphdef, frozen_state)
        for model in models.values():
            model.train() if training else model.eval()
        for module in frozen.values():
            module.eval()
        return models, opts, frozen

    def make_step(active: tuple[int, ...]):
        def step_fn(state: Any, frozen_state: Any, batch: dict, step: jax.Array):
            models, opts, frozen = merged(state, frozen_state, True)
            key = jax.random.fold_in(jax.random.key(seed), step)
            metrics = {}
            for i in active:
                phase, name = phases[i], phases[i].updates
                phase_key = key if i == 0 else jax.random.fold_in(key, i)

                def loss_fn(target, others, frozen, phase=phase, name=name, phase_key=phase_key):
                    return phase.loss({**others, name: target}, frozen, batch, phase_key, config)

                others = {n: m for n, m in models.items() if n != name}
                grad_fn = nnx.value_and_grad(
                    loss_fn, argnums=nnx.DiffState(0, nnx.Param), has_aux=True
                )
                (loss, terms), grads = grad_fn(models[name], others, frozen)
                metrics[f"lr/{name}"] = optimizers[name].schedule(opts[name].step[...])
                opts[name].update(models[name], grads)
                prefix = "" if single else f"{phase.label}/"
                metrics.update({prefix + k: v for k, v in terms.items()})
                metrics[prefix + "loss"] = loss
                metrics[f"grad_norm/{phase.label}"] = optax.tree.norm(grads)
            for n, model in models.items():
                metrics[f"param_norm/{n}"] = optax.tree.norm(nnx.state(model, nnx.Param))
            return nnx.state((models, opts)), metrics

        return jax.jit(
            step_fn,
            in_shardings=(replicated, replicated, data_sharding, replicated),
            out_shardings=(replicated, replicated),
            donate_argnums=0,
        )

    def eval_fn(state: Any, frozen_state: Any, batch: dict, weight: jax.Array):
        models, _, frozen = merged(state, frozen_state, False)
        values = task.evaluate(models, frozen, batch, config)
        return {k: jnp.sum(v * weight) for k, v in values.items()}, jnp.sum(weight)

    n_images = int(tc.get("images", 4))

    def images_fn(state: Any, frozen_state: Any, batch: dict):
        models, _, frozen = merged(state, frozen_state, False)
        return {k: v[:n_images] for k, v in task.images(models, frozen, batch, config).items()}

    eval_jit = jax.jit(
        eval_fn,
        in_shardings=(replicated, replicated, data_sharding, data_sharding),
        out_shardings=replicated,
    )
    images_jit = jax.jit(
        images_fn, in_shardings=(replicated, replicated, data_sharding), out_shardings=replicated
    )
    steps_jit: dict[tuple[int, ...], Any] = {}

    def to_global(batch: dict) -> dict:
        return {
            k: jax.make_array_from_process_local_data(data_sharding, np.asarray(v))
            for k, v in batch.items()
        }

    def evaluate(step: int) -> dict[str, float]:
        sums: dict[str, float] = {}
        count = 0.0
        for i, (records, weight) in enumerate(
            eval_batches(eval_source, eval_batch_size, process, processes)
        ):
            batch = to_global(task.make_batch(records, config))
            values, n = eval_jit(state, frozen_state, batch, to_global({"w": weight})["w"])
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += float(n)
            if i == 0 and n_images:
                pictures = images_jit(state, frozen_state, batch)
                if writer is not None and pictures:
                    writer.images(step, {f"images/{k}": _tile(v) for k, v in pictures.items()})
        return {k: v / max(count, 1.0) for k, v in sums.items()}

    def save(step: int) -> None:
        arrays = {n: state[0][n] for n in names}
        arrays.update({ckpt.optimizer_item(n): state[1][n] for n in names})
        meta = dict(
            format=ckpt.FORMAT,
            stage=task.name,
            step=step,
            elapsed_seconds=time.perf_counter() - began,
            config=ckpt.plain(config),
        )
        documents = {ckpt.DATA: json.loads(iterator.get_state()), ckpt.META: meta}
        ckpt.save(manager, step, arrays, documents)

    total = int(tc.steps)
    end = min(total, stop_at) if stop_at is not None else total
    kill_after = int(os.environ.get(KILL_AFTER_STEP, -1))
    last: dict[str, float] = {}
    evaluation: dict[str, float] = {}
    sums: dict[str, Any] = {}
    counts: dict[str, int] = {}
    bar = _progress(progress and writer0, start, total, task.name)
    began = time.perf_counter() - elapsed
    interval_began, interval_steps = time.perf_counter(), 0
    step = start
    try:
        while step < end:
            batch = to_global(task.make_batch(next(iterator), config))
            active = tuple(i for i, p in enumerate(phases) if step % p.every == p.offset)
            if active not in steps_jit:
                steps_jit[active] = make_step(active)
            state, metrics = steps_jit[active](
                state, frozen_state, batch, jnp.asarray(step, jnp.int32)
            )
            step += 1
            interval_steps += 1
            bar.update(1)
            for k, v in metrics.items():
                sums[k] = v if k.startswith("lr/") else sums.get(k, 0.0) + v
                counts[k] = 1 if k.startswith("lr/") else counts.get(k, 0) + 1
            if step % int(tc.log_every) == 0 or step == end:
                last = {k: float(sums[k]) / counts[k] for k in sums}
                now = time.perf_counter()
                last["examples_per_second"] = batch_size * interval_steps / (now - interval_began)
                sums, counts, interval_began, interval_steps = {}, {}, now, 0
                losses = [k for k in last if k.endswith("loss")]
                if losses:
                    bar.set_postfix(loss=f"{last[losses[0]]:.4f}")
                if writer0:
                    _write(log, dict(step=step, seconds=now - began, **last))
                    writer.scalars(step, last)
            if step % int(tc.eval_every) == 0 or step == total:
                if eval_source is not None:
                    evaluation = evaluate(step)
                    if writer0:
                        _write(log, dict(step=step, eval=evaluation))
                        writer.scalars(step, {f"eval/{k}": v for k, v in evaluation.items()})
            if step % int(tc.checkpoint_every) == 0 or step == end:
                save(step)
            if step == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
    except KeyboardInterrupt:
        if step > start and manager.latest_step() != step:
            save(step)  # nothing lost: the next run resumes here
        raise
    finally:
        bar.close()
        if log is not None:
            log.close()
            writer.close()
    return TrainResult(step=step, metrics=last, evaluation=evaluation, workdir=workdir)


def _write(log: Any, entry: dict[str, Any]) -> None:
    log.write(json.dumps(entry) + "\n")
    log.flush()


def _progress(enabled: bool, start: int, total: int, name: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=f"train {name}", unit="step", disable=not enabled)
