"""``occface export``: trained stages to files any JAX program can run without this project.

For each stage of a training workdir (``WORKDIR/<stage>/``, read by ``predictors.load_stage``) the
stage's inference function (``predictors.STAGE_FUNCTIONS``) is serialised with ``jax.export``
(StableHLO, a symbolic batch dimension, lowered for CPU and CUDA: lowering for CUDA needs no GPU)
into ``OUT/<stage>/function.jax``, its weights into ``weights.npz`` and a ``manifest.json``
describing both (format in ``occface_jax.io.exported``, which reads them back with jax and numpy
only and is copied to ``OUT/loader.py``). Adding a stage is one entry of ``STAGE_FUNCTIONS``.
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
from occface_jax.app.predictors import STAGE_FUNCTIONS, StageFunction, TensorSpec, load_stage
from occface_jax.errors import OccfaceError
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


def export_stage(
    workdir: str | Path, stage: str, out: str | Path, platforms: Sequence[str] = PLATFORMS
) -> Path:
    """Export ``stage`` of training workdir ``workdir`` into ``out/<stage>/``; returns that folder."""
    if stage not in STAGE_FUNCTIONS:
        raise OccfaceError(f"no export for stage {stage!r}; known: {', '.join(STAGE_FUNCTIONS)}")
    models, config, step = load_stage(workdir, stage)
    function = STAGE_FUNCTIONS[stage](models, config)
    folder = Path(out) / stage
    folder.mkdir(parents=True, exist_ok=True)
    (folder / exported.MANIFEST).unlink(missing_ok=True)  # a half-written export never loads
    weights = {k: np.asarray(v) for k, v in function.weights.items()}
    np.savez(folder / exported.WEIGHTS, **weights)
    serialised = serialise(function, platforms)
    (folder / exported.FUNCTION).write_bytes(serialised.serialize())
    manifest = {
        "format": exported.FORMAT,
        "stage": stage,
        "step": int(step),
        "config": plain(config),
        "inputs": [_spec_json(s) for s in function.inputs],
        "outputs": [_spec_json(s) for s in function.outputs],
        "weights": {
            "file": exported.WEIGHTS,
            "sha256": exported.sha256(folder / exported.WEIGHTS),
            "arrays": {
                k: {"shape": list(v.shape), "dtype": str(v.dtype)}
                for k, v in sorted(weights.items())
            },
        },
        "function": {
            "file": exported.FUNCTION,
            "sha256": exported.sha256(folder / exported.FUNCTION),
            "platforms": list(serialised.platforms),
            "calling_convention_version": serialised.calling_convention_version,
            "signature": "f(weights: dict name -> array, *inputs) -> outputs",
        },
        "morphable_model": function.extra.get("morphable_model"),
        **{k: v for k, v in function.extra.items() if k != "morphable_model"},
        "training": {
            "workdir": str(Path(workdir).absolute() / stage),
            "step": int(step),
            "data": plain(config).get("data", {}).get("source"),
        },
        "versions": _versions(),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / exported.MANIFEST).write_text(json.dumps(manifest, indent=1))
    return folder


def trained_stages(workdir: str | Path) -> list[str]:
    """The exportable stages trained into ``workdir`` (a ``<stage>/config.json`` there)."""
    return [s for s in STAGE_FUNCTIONS if (Path(workdir) / s / "config.json").is_file()]


def export_stages(
    workdir: str | Path,
    out: str | Path,
    stages: Sequence[str] | None = None,
    platforms: Sequence[str] = PLATFORMS,
) -> dict[str, Path]:
    """Export ``stages`` (default: every stage trained into ``workdir``) into ``out``; copies the
    standalone loader to ``out/loader.py``. Returns stage -> folder."""
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
    folders = {s: export_stage(workdir, s, out, platforms) for s in stages}
    shutil.copyfile(exported.__file__, out / LOADER)
    return folders
