"""Checkpoints of training runs (orbax), read the same way by training (resume, upstream stages) and by
inference, with one-line errors instead of orbax / TensorStore tracebacks.

A stage's work directory (``WORKDIR/<stage>/``) holds ``config.json`` (the run's config) and
``checkpoints/<step>/``, one orbax ``CheckpointManager`` step per folder, whose items are:

- one item per model, named after it (``unet``; ``generator``, ``discriminator``) and one per
  optimizer (``<model>_optimizer``): arrays (``StandardSave``);
- ``data``: the data position (the grain iterator's state, JSON);
- ``meta``: JSON ``{format, stage, step, elapsed_seconds, config}``: the full config the step was
  trained with, compared with the config in hand before anything is read or written;
- ``manifest.json`` (not an orbax item): size and CRC-32 of every file of the step, checked before
  orbax opens any of them, so a truncated or corrupted file is named.

Checkpoints of format 1 (items ``model``, ``optimizer``, ``data``, no ``meta``) still load for
inference: a stage with a single model reads its weights from ``model`` (:func:`load_models`).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from occface_jax.errors import OccfaceError

FORMAT = 2
META = "meta"
DATA = "data"
MANIFEST = "manifest.json"
LEGACY_MODEL = "model"  # the one model item of format 1

#: How a stage's model is built: ``(builder(config_section, rngs) -> nnx.Module, section name)``.
ModelSpec = tuple[Callable[[ml_collections.ConfigDict, nnx.Rngs], nnx.Module], str]


def optimizer_item(model: str) -> str:
    """The checkpoint item of ``model``'s optimizer state."""
    return f"{model}_optimizer"


def manager(directory: str | Path, keep: int = 2) -> ocp.CheckpointManager:
    """The orbax manager of ``directory`` (a stage's ``checkpoints/``; keeps the ``keep`` newest)."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def step_dir(mgr: ocp.CheckpointManager, step: int) -> Path:
    return Path(mgr.directory) / str(step)


def items(mgr: ocp.CheckpointManager, step: int) -> set[str]:
    """The item names checkpoint ``step`` holds."""
    return {p.name for p in step_dir(mgr, step).iterdir() if p.is_dir()}


def save(
    mgr: ocp.CheckpointManager, step: int, arrays: Mapping[str, Any], documents: Mapping[str, Any]
) -> None:
    """Save array trees ``arrays`` and JSON ``documents`` as checkpoint ``step``, wait for it, and
    write its manifest (process 0)."""
    args = {k: ocp.args.StandardSave(v) for k, v in arrays.items()}
    args.update({k: ocp.args.JsonSave(v) for k, v in documents.items()})
    mgr.save(step, args=ocp.args.Composite(**args), force=True)
    mgr.wait_until_finished()
    if jax.process_index() == 0:
        write_manifest(step_dir(mgr, step))


def _crc(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def write_manifest(directory: Path) -> None:
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {str(p.relative_to(directory)): [p.stat().st_size, _crc(p)] for p in files}
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(entries, indent=0))
    tmp.replace(directory / MANIFEST)


def verify_manifest(directory: Path) -> None:
    """Raise OccfaceError naming the first missing, truncated or corrupted file of checkpoint folder
    ``directory`` (no manifest, as in format 1: nothing to check)."""
    path = directory / MANIFEST
    if not path.is_file():
        return
    try:
        entries = json.loads(path.read_text())
    except ValueError as err:
        raise OccfaceError(f"{path}: corrupted checkpoint manifest ({err})") from err
    hint = f"delete {directory} to resume from an earlier checkpoint"
    for name, (size, crc) in entries.items():
        file = directory / name
        if not file.is_file():
            raise OccfaceError(f"checkpoint file {file} is missing; {hint}")
        have = file.stat().st_size
        if have != size:
            raise OccfaceError(
                f"checkpoint file {file} is truncated ({have} of {size} bytes); {hint}"
            )
        if _crc(file) != crc:
            raise OccfaceError(f"checkpoint file {file} is corrupted (CRC mismatch); {hint}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


def check_shapes(mgr: ocp.CheckpointManager, step: int, item: str, tree: Any) -> None:
    """Raise OccfaceError when checkpoint ``step``'s ``item`` holds arrays of other shapes than
    ``tree`` (read from the stored metadata, before orbax reads any array)."""
    path = step_dir(mgr, step) / item
    try:
        stored = ocp.StandardCheckpointer().metadata(path)
    except Exception as err:  # noqa: BLE001 - orbax / TensorStore raise many kinds
        raise OccfaceError(f"checkpoint {path} cannot be read ({_first_line(err)})") from err
    stored = getattr(stored, "item_metadata", stored)
    have = sorted(tuple(x.shape) for x in jax.tree.leaves(stored))
    want = sorted(tuple(x.shape) for x in jax.tree.leaves(tree))
    if have != want:
        extra = sorted(set(have) - set(want))[:3]
        raise OccfaceError(
            f"checkpoint {path} does not fit this config's model: it holds {len(have)} arrays, "
            f"the model {len(want)}; stored shapes such as {extra} are not in the model"
        )


def restore(
    mgr: ocp.CheckpointManager,
    step: int,
    arrays: Mapping[str, Any],
    documents: Sequence[str] = (),
    stored_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Items of checkpoint ``step``: array trees restored into the abstract trees ``arrays`` (name ->
    tree of ``jax.ShapeDtypeStruct`` with shardings) and JSON ``documents``. ``stored_names`` maps an
    item to the name it has on disk when that differs (format 1). Files are checked against the
    manifest and shapes against the stored metadata first; any failure is one OccfaceError line."""
    directory = step_dir(mgr, step)
    verify_manifest(directory)
    stored_names = stored_names or {}
    for name, tree in arrays.items():
        check_shapes(mgr, step, stored_names.get(name, name), tree)
    args = {stored_names.get(k, k): ocp.args.StandardRestore(v) for k, v in arrays.items()}
    args.update({k: ocp.args.JsonRestore() for k in documents})
    try:
        restored = mgr.restore(step, args=ocp.args.Composite(**args))
    except Exception as err:  # noqa: BLE001
        raise OccfaceError(f"checkpoint {directory} cannot be read ({_first_line(err)})") from err
    back = {v: k for k, v in stored_names.items()}
    return {back.get(k, k): restored[k] for k in args}


def read_document(mgr: ocp.CheckpointManager, step: int, name: str) -> Any:
    """JSON item ``name`` of checkpoint ``step`` (None when the step has no such item)."""
    if name not in items(mgr, step):
        return None
    return restore(mgr, step, {}, (name,))[name]


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def plain(config: Any) -> dict[str, Any]:
    """A config (ConfigDict or dict) as plain JSON data (tuples become lists)."""
    if isinstance(config, ml_collections.ConfigDict):
        return json.loads(config.to_json_best_effort())
    return json.loads(json.dumps(config, default=str))


def config_differences(stored: Any, current: Any, sections: Sequence[str]) -> list[str]:
    """``key (stored value -> current value)`` for every leaf of the ``sections`` of two configs
    that differs."""
    stored, current = plain(stored), plain(current)
    out = []
    for section in sections:
        a = _flat(stored.get(section, {}), f"{section}.")
        b = _flat(current.get(section, {}), f"{section}.")
        for key in sorted(set(a) | set(b)):
            if a.get(key, "<absent>") != b.get(key, "<absent>"):
                out.append(f"{key} ({a.get(key, '<absent>')} -> {b.get(key, '<absent>')})")
    return out


def check_config(stored: Any, current: Any, sections: Sequence[str], where: str) -> None:
    """Raise OccfaceError naming the keys of ``sections`` where ``current`` differs from the config
    ``stored`` with checkpoint ``where``."""
    differ = config_differences(stored, current, sections)
    if differ:
        raise OccfaceError(
            f"{where} was trained with another config: {', '.join(differ)} "
            "(checkpoint -> now); use the run's config or another workdir"
        )


def abstract(tree: Any, sharding: NamedSharding) -> Any:
    """``tree``'s arrays as ``jax.ShapeDtypeStruct`` placed with ``sharding``."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def build_models(
    specs: Mapping[str, ModelSpec], config: ml_collections.ConfigDict, seed: int
) -> dict[str, nnx.Module]:
    """The models of ``specs``, freshly initialised (model i from ``nnx.Rngs(seed + i)``)."""
    return {
        name: builder(config[section], nnx.Rngs(seed + i))
        for i, (name, (builder, section)) in enumerate(specs.items())
    }


def load_models(
    stage_dir: str | Path,
    stage: str,
    specs: Mapping[str, ModelSpec],
    sections: Sequence[str] = ("model",),
    config: ml_collections.ConfigDict | None = None,
    step: int | None = None,
) -> tuple[dict[str, nnx.Module], ml_collections.ConfigDict, int]:
    """(models in evaluation mode, config, step) of ``stage`` trained into ``stage_dir``, on the
    default device: the models of ``specs`` rebuilt from ``config`` (default: ``stage_dir/
    config.json``) and filled from checkpoint ``step`` (newest when None). The config ``sections``
    stored with the checkpoint must equal ``config``'s."""
    stage_dir = Path(stage_dir)
    config_path = stage_dir / "config.json"
    if config is None:
        if not config_path.is_file():
            raise OccfaceError(
                f"{stage_dir}: no trained {stage} network here (expected config.json and "
                f"checkpoints/ written by `occface train {stage} --workdir {stage_dir.parent}`)"
            )
        try:
            config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
        except (ValueError, TypeError) as err:
            raise OccfaceError(f"{config_path}: not a readable config ({err})") from err
    if not (stage_dir / "checkpoints").is_dir():
        raise OccfaceError(f"no checkpoint in {stage_dir / 'checkpoints'}")
    mgr = manager(stage_dir / "checkpoints")
    step = mgr.latest_step() if step is None else step
    if step is None:
        raise OccfaceError(f"no checkpoint in {stage_dir / 'checkpoints'}")
    present = items(mgr, step)
    stored_names = {}
    if META in present:
        meta = read_document(mgr, step, META)
        check_config(meta["config"], config, sections, f"checkpoint {step_dir(mgr, step)}")
    elif len(specs) == 1 and LEGACY_MODEL in present:  # format 1: weights in `model`
        stored_names = {next(iter(specs)): LEGACY_MODEL}
    graphdef, state = nnx.split(nnx.eval_shape(lambda: build_models(specs, config, 0)))
    device = NamedSharding(Mesh(np.asarray(jax.local_devices()[:1]), ("data",)), P())
    missing = [n for n in specs if stored_names.get(n, n) not in present]
    if missing:
        raise OccfaceError(
            f"checkpoint {step_dir(mgr, step)} holds no {', '.join(missing)} (items: "
            f"{', '.join(sorted(present))}); it was written by another stage or format"
        )
    restored = restore(
        mgr, step, {n: abstract(state[n], device) for n in specs}, stored_names=stored_names
    )
    models = nnx.merge(graphdef, nnx.State({n: restored[n] for n in specs}))
    for model in models.values():
        model.eval()
    return models, config, int(step)
