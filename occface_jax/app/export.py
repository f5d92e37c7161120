"""``occface export``: trained stages to files any JAX program can run without this project.

For each stage of a training workdir (``WORKDIR/<stage>/``, read by ``predictors.load_stage``) the
stage's inference function (``predictors.STAGE_FUNCTIONS``) is serialised with ``jax.export``
(StableHLO, a symbolic batch dimension, lowered for CPU and CUDA: lowering for CUDA needs no GPU)
into ``OUT/<stage>/function.jax``, its weights into ``weights.npz`` and a ``manifest.json``
describing both (format in ``occface_jax.io.exported``, which reads them back with jax and numpy
only and is copied to ``OUT/loader.py``). Adding a stage is one entry of ``STAGE_FUNCTIONS``.

When two or more of the exported stages chain (``predictors.frontend_members``: mask, de-occlusion
with mask + contour + synthesis, regressor), the whole front end is exported too, as one function
(``predictors.frontend_function``: aligned crops -> occluder probability, hole, C_fina, complete
face, coefficients) into ``OUT/frontend/``; it reads its members' weights from their folders.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax import export as jax_export

import occface_jax
from occface_jax.app.predictors import (
    FRONTEND,
    STAGE_FUNCTIONS,
    StageFunction,
    TensorSpec,
    frontend_function,
    frontend_members,
    load_stage,
)
from occface_jax.errors import OccfaceError
from occface_jax.faces.align import TARGET_SIZE
from occface_jax.io import exported
from occface_jax.io.checkpoints import plain

PLATFORMS = ("cpu", "cuda")
LOADER = "loader.py"


def _versions() -> dict[str, str]:
    out = {"occface_jax": occface_jax.__version__}
    for package in ("jax", "jaxlib", "flax", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _spec_json(spec: TensorSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "shape": list(spec.shape),
        "dtype": spec.dtype,
        "units": spec.units,
        "range": list(spec.range) if spec.range is not None else None,
    }


def serialise(function: StageFunction, platforms: Sequence[str] = PLATFORMS) -> jax_export.Exported:
    """``jax.export`` of ``function.apply`` for ``platforms``, every ``"batch"`` dimension of the
    inputs one symbolic size; its outputs checked against ``function.outputs``."""
    (batch,) = jax_export.symbolic_shape(exported.BATCH)
    weights = {k: jax.ShapeDtypeStruct(np.shape(v), v.dtype) for k, v in function.weights.items()}
    inputs = [
        jax.ShapeDtypeStruct(
            tuple(batch if d == exported.BATCH else int(d) for d in s.shape), np.dtype(s.dtype)
        )
        for s in function.inputs
    ]
    result = jax_export.export(jax.jit(function.apply), platforms=tuple(platforms))(
        weights, *inputs
    )
    got = [tuple(str(d) for d in a.shape) for a in result.out_avals]
    want = [tuple(str(d) for d in s.shape) for s in function.outputs]
    if got != want:
        raise OccfaceError(f"the exported function returns shapes {got}, its spec says {want}")
    return result


def _manifest_base(function: StageFunction, serialised: jax_export.Exported) -> dict[str, Any]:
    """The manifest fields every export shares: specs, function file entry, versions, time."""
    return {
        "inputs": [_spec_json(s) for s in function.inputs],
        "outputs": [_spec_json(s) for s in function.outputs],
        "function": {
            "file": exported.FUNCTION,
            "platforms": list(serialised.platforms),
            "calling_convention_version": serialised.calling_convention_version,
            "signature": "f(weights: dict name -> array, *inputs) -> outputs",
        },
        "versions": _versions(),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _write_function(folder: Path, serialised: jax_export.Exported, manifest: dict) -> None:
    (folder / exported.FUNCTION).write_bytes(serialised.serialize())
    manifest["function"]["sha256"] = exported.sha256(folder / exported.FUNCTION)
    (folder / exported.MANIFEST).write_text(json.dumps(manifest, indent=1))


def _arrays(weights: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sorted(weights.items())}


def export_stage(
    workdir: str | Path,
    stage: str,
    out: str | Path,
    platforms: Sequence[str] = PLATFORMS,
    loaded: tuple[StageFunction, Any, int] | None = None,
) -> Path:
    """Export ``stage`` of training workdir ``workdir`` into ``out/<stage>/``; returns that folder.
    ``loaded``: the stage's (function, config, step) when the caller has it already."""
    if stage not in STAGE_FUNCTIONS:
        raise OccfaceError(f"no export for stage {stage!r}; known: {', '.join(STAGE_FUNCTIONS)}")
    function, config, step = loaded if loaded is not None else load_function(workdir, stage)
    folder = Path(out) / stage
    folder.mkdir(parents=True, exist_ok=True)
    (folder / exported.MANIFEST).unlink(missing_ok=True)  # a half-written export never loads
    weights = {k: np.asarray(v) for k, v in function.weights.items()}
    np.savez(folder / exported.WEIGHTS, **weights)
    serialised = serialise(function, platforms)
    manifest = {
        "format": exported.FORMAT,
        "stage": stage,
        "step": int(step),
        "config": plain(config),
        **_manifest_base(function, serialised),
        "weights": {
            "file": exported.WEIGHTS,
            "sha256": exported.sha256(folder / exported.WEIGHTS),
            "arrays": _arrays(weights),
        },
        "morphable_model": function.extra.get("morphable_model"),
        **{k: v for k, v in function.extra.items() if k != "morphable_model"},
        "training": {
            "workdir": str(Path(workdir).absolute() / stage),
            "step": int(step),
            "data": plain(config).get("data", {}).get("source"),
        },
    }
    _write_function(folder, serialised, manifest)
    return folder


def load_function(workdir: str | Path, stage: str) -> tuple[StageFunction, Any, int]:
    """(the stage's :data:`STAGE_FUNCTIONS` function, its config, its step) from ``workdir``."""
    models, config, step = load_stage(workdir, stage)
    return STAGE_FUNCTIONS[stage](models, config), config, int(step)


def export_frontend(
    out: str | Path,
    loaded: dict[str, tuple[StageFunction, Any, int]],
    size: int = TARGET_SIZE,
    platforms: Sequence[str] = PLATFORMS,
) -> Path:
    """The reconstruction front end (``predictors.frontend_function``) of the stages in
    ``loaded`` (stage -> (function, config, step), already exported into ``out/<stage>/``) into
    ``out/frontend/``: ``function.jax`` and ``manifest.json``, no weights of its own; the loader
    takes each member's from its folder (checked against the SHA-256 recorded here)."""
    members = frontend_members(loaded)
    function = frontend_function(
        {s: loaded[s][0] for s in members}, {s: loaded[s][1] for s in members}, size
    )
    folder = Path(out) / FRONTEND
    folder.mkdir(parents=True, exist_ok=True)
    (folder / exported.MANIFEST).unlink(missing_ok=True)
    serialised = serialise(function, platforms)
    member_entries = {}
    for stage in members:
        member = Path(out) / stage / exported.MANIFEST
        recorded = json.loads(member.read_text())["weights"]
        member_entries[stage] = {
            "folder": stage,
            "step": int(loaded[stage][2]),
            "weights_sha256": recorded["sha256"],
            "config": plain(loaded[stage][1]),
        }
    manifest = {
        "format": exported.FORMAT,
        "stage": FRONTEND,
        "step": None,
        "size": int(size),
        "members": member_entries,
        **_manifest_base(function, serialised),
        "weights": {
            "file": None,
            "from_members": list(members),
            "arrays": _arrays({k: np.asarray(v) for k, v in function.weights.items()}),
        },
        "morphable_model": function.extra.get("morphable_model"),
        "chain": (
            "aligned crop -> N_mask (resized to its input, bilinear antialiased; map back "
            "bilinear) -> hole = probability > 0.5 grown by a disc -> N_cont on the luma, its "
            "Canny edges (JAX) and the hole at its size -> N_syn at its size -> composite "
            "inside the hole at the crop size -> regressor on the complete face"
        ),
    }
    _write_function(folder, serialised, manifest)
    return folder


def trained_stages(workdir: str | Path) -> list[str]:
    """The exportable stages trained into ``workdir`` (a ``<stage>/config.json`` there)."""
    return [s for s in STAGE_FUNCTIONS if (Path(workdir) / s / "config.json").is_file()]


def export_stages(
    workdir: str | Path,
    out: str | Path,
    stages: Sequence[str] | None = None,
    platforms: Sequence[str] = PLATFORMS,
    frontend: bool = True,
    frontend_size: int = TARGET_SIZE,
) -> dict[str, Path]:
    """Export ``stages`` (default: every stage trained into ``workdir``) into ``out``, and with
    ``frontend`` the front end (:func:`export_frontend`) whenever two or more of them chain
    (``predictors.frontend_members``); copies the standalone loader to ``out/loader.py``. Returns
    stage -> folder (``frontend`` included when written)."""
    workdir, out = Path(workdir), Path(out)
    if not workdir.is_dir():
        raise OccfaceError(f"--workdir {workdir}: no such folder")
    stages = list(stages) if stages else trained_stages(workdir)
    if not stages:
        raise OccfaceError(
            f"{workdir}: no trained stage to export (expected {', '.join(STAGE_FUNCTIONS)}/ "
            "folders written by `occface train`)"
        )
    unknown = [s for s in stages if s not in STAGE_FUNCTIONS]
    if unknown:
        raise OccfaceError(
            f"no export for stage {unknown[0]!r}; known: {', '.join(STAGE_FUNCTIONS)}"
        )
    loaded = {s: load_function(workdir, s) for s in stages}
    folders = {s: export_stage(workdir, s, out, platforms, loaded[s]) for s in stages}
    if frontend and len(frontend_members(stages)) >= 2:
        folders[FRONTEND] = export_frontend(out, loaded, frontend_size, platforms)
    shutil.copyfile(exported.__file__, out / LOADER)
    return folders
