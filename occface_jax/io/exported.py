"""Reading an exported stage (``occface export``): jax and numpy only, no project model code.

This file runs on its own (``occface export`` copies it into the export folder as ``loader.py``):
it imports nothing of the project but ``occface_jax.errors``, and only when that is importable.

An export folder holds one sub-folder per stage (``mask/``, ...), each with

- ``manifest.json``: ``format`` (:data:`FORMAT`), ``stage``, ``step`` (training step), ``config`` (the
  run's full config), ``inputs`` / ``outputs`` (name, shape with ``"batch"`` for the symbolic batch
  dimension, dtype, units, value range), ``weights`` (file, SHA-256, name -> shape and dtype),
  ``function`` (file, SHA-256, platforms), ``morphable_model`` (name and digest, or null), versions;
- ``weights.npz``: the parameters, one array per dotted name (read with ``allow_pickle=False``);
- ``function.jax``: ``jax.export.serialize`` of ``f(weights, *inputs) -> outputs`` (StableHLO).

The front end (``frontend/``: aligned crops -> N_mask -> de-occlusion -> regressor as one function)
has no ``weights.npz``: its manifest's ``members`` name each member stage's sibling folder and the
SHA-256 of the weights it was exported with; its weights are theirs, named ``<stage>.<name>``.

    stage = load_exported("export/mask")        # or load_exported("export", "mask")
    probabilities = stage(crops)                # numpy/jax (B, S, S, 3) in [0, 1] -> (B, S, S)
    probability, hole, contour, face, coeffs = load_exported("export", "frontend")(crops)  # 224 px

Every problem (missing file, a manifest that is not this format or does not match its files, weights
of other shapes than the function takes, inputs of the wrong shape) is one line of ``OccfaceError``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax import export as jax_export

try:  # inside the project: its error class; standalone (loader.py beside an export): our own
    from occface_jax.errors import OccfaceError
except ImportError:  # pragma: no cover - exercised by the standalone loader test

    class OccfaceError(Exception):  # type: ignore[no-redef]
        """One-line error of an unreadable export."""


FORMAT = "occface-export/1"
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
FUNCTION = "function.jax"
BATCH = "batch"  # the symbolic batch dimension's name in manifest shapes


def sha256(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_export(folder: str | Path) -> bool:
    """Whether ``folder`` is one exported stage (its manifest names this format)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("format") == FORMAT
    except (ValueError, AttributeError):
        return False


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of the exported stage in ``folder``, its format and fields checked."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise OccfaceError(
            f"{path}: missing (an exported stage holds {MANIFEST}, {WEIGHTS}, {FUNCTION})"
        )
    try:
        manifest = json.loads(path.read_text())
    except ValueError as err:
        raise OccfaceError(f"{path}: not JSON ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise OccfaceError(
            f"{path}: format {got!r}, expected {FORMAT!r} (written by occface export)"
        )
    needed = ("stage", "inputs", "outputs", "weights", "function")
    missing = [k for k in needed if k not in manifest]
    if missing:
        raise OccfaceError(f"{path}: tampered or incomplete manifest, no {', '.join(missing)}")
    return manifest


def _checked_file(folder: Path, entry: dict[str, Any], what: str) -> Path:
    path = folder / str(entry.get("file", ""))
    if not path.is_file():
        raise OccfaceError(f"{path}: {what} file missing; export the stage again")
    if sha256(path) != entry.get("sha256"):
        raise OccfaceError(
            f"{path}: {what} file does not match the manifest's SHA-256 (changed after export)"
        )
    return path


def _shape_text(shape: Sequence[Any]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


class ExportedStage:
    """One exported stage: ``stage(*inputs) -> output`` (a tuple when there are several), checked
    against the manifest's input spec; :meth:`call` is the same without checks and traceable (for
    use inside ``jax.jit``). ``manifest``, ``weights`` (name -> array) and ``exported``
    (``jax.export.Exported``) are public."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.folder = folder
        self.manifest = manifest = read_manifest(folder)
        self.stage = str(manifest["stage"])
        if "members" in manifest:  # the front end: its members' weights, from their folders
            weights_path = folder / MANIFEST
            weights = self._member_weights()
        else:
            weights_path = _checked_file(folder, manifest["weights"], "weights")
            try:
                with np.load(weights_path, allow_pickle=False) as data:
                    weights = {k: np.asarray(data[k]) for k in data.files}
            except (ValueError, OSError) as err:
                raise OccfaceError(f"{weights_path}: not a readable npz ({err})") from err
        function_path = _checked_file(folder, manifest["function"], "function")
        try:
            self.exported = jax_export.deserialize(bytearray(function_path.read_bytes()))
        except Exception as err:  # noqa: BLE001 - flatbuffer / MLIR errors of many kinds
            raise OccfaceError(
                f"{function_path}: not a serialised jax.export function ({err})"
            ) from err
        self._check_weights(weights, weights_path)
        self.weights = {k: jax.numpy.asarray(v) for k, v in weights.items()}

    def _member_weights(self) -> dict[str, Any]:
        """``<member>.<name>`` -> array for each member stage of a front-end export, each
        member loaded (and checked) from the sibling folder its entry names, its weights the
        ones the front end was exported with."""
        weights: dict[str, Any] = {}
        members = self.manifest["members"]
        if not isinstance(members, dict) or not members:
            raise OccfaceError(f"{self.folder / MANIFEST}: tampered manifest, no member stages")
        for stage, entry in members.items():
            where = self.folder.parent / str(entry.get("folder", stage))
            try:
                member = ExportedStage(where)
            except OccfaceError as err:
                raise OccfaceError(f"{self.stage} member {stage}: {err}") from None
            if member.stage != stage:
                raise OccfaceError(
                    f"{self.stage} member {stage}: {where / MANIFEST} holds stage {member.stage!r}"
                )
            if member.manifest["weights"].get("sha256") != entry.get("weights_sha256"):
                raise OccfaceError(
                    f"{self.stage} member {stage}: {where} holds other weights than the front end "
                    "was exported with; export the stages and the front end together again"
                )
            weights.update({f"{stage}.{k}": v for k, v in member.weights.items()})
        return weights

    def _check_weights(self, weights: dict[str, np.ndarray], path: Path) -> None:
        declared = self.manifest["weights"].get("arrays", {})
        if set(declared) != set(weights):
            odd = sorted(set(declared) ^ set(weights))[:3]
            raise OccfaceError(f"{path}: arrays {odd} differ between the file and the manifest")
        # The function's own parameter avals (its first argument is the weights dict, sorted keys).
        takes = len(self.exported.in_avals) - len(self.manifest["inputs"])
        if takes != len(weights):
            raise OccfaceError(
                f"{path}: holds {len(weights)} arrays, the exported function takes {takes} weights"
            )
        avals = self.exported.in_avals[:takes]
        for (name, array), aval in zip(sorted(weights.items()), avals, strict=True):
            spec = declared[name]
            if list(array.shape) != list(spec["shape"]) or str(array.dtype) != spec["dtype"]:
                raise OccfaceError(
                    f"{path}: {name} is {array.dtype}{_shape_text(array.shape)}, the manifest says "
                    f"{spec['dtype']}{_shape_text(spec['shape'])}"
                )
            if tuple(array.shape) != tuple(aval.shape) or array.dtype != aval.dtype:
                raise OccfaceError(
                    f"{path}: {name} is {array.dtype}{_shape_text(array.shape)}, the exported "
                    f"function takes {aval.dtype}{_shape_text(aval.shape)}"
                )

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return list(self.manifest["inputs"])

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list(self.manifest["outputs"])

    def call(self, *inputs: Any) -> Any:
        """The exported function on ``inputs`` with this stage's weights (no checks; traceable)."""
        return self.exported.call(self.weights, *inputs)

    def check_inputs(self, inputs: Sequence[Any]) -> None:
        """OccfaceError (one line) unless ``inputs`` match the manifest's spec (any batch size)."""
        specs = self.inputs
        if len(inputs) != len(specs):
            raise OccfaceError(f"{self.stage}: takes {len(specs)} input(s), got {len(inputs)}")
        batch = None
        for x, spec in zip(inputs, specs, strict=True):
            shape, want = tuple(np.shape(x)), spec["shape"]
            fits = len(shape) == len(want) and all(
                w == BATCH or int(w) == s for s, w in zip(shape, want, strict=True)
            )
            if fits and BATCH in want:
                size = shape[want.index(BATCH)]
                fits = batch is None or size == batch
                batch = size
            if not fits:
                raise OccfaceError(
                    f"{self.stage}: input {spec['name']} has shape {_shape_text(shape)}, expected "
                    f"{_shape_text(want)} ({spec.get('units', '')})"
                )

    def __call__(self, *inputs: Any) -> Any:
        self.check_inputs(inputs)
        dtypes = [np.dtype(spec["dtype"]) for spec in self.inputs]
        return self.call(*(jax.numpy.asarray(x, d) for x, d in zip(inputs, dtypes, strict=True)))


def load_exported(folder: str | Path, stage: str | None = None) -> ExportedStage:
    """The exported stage in ``folder`` (or in ``folder/stage``); its manifest's stage must be
    ``stage`` when one is named."""
    folder = Path(folder)
    if stage is not None and not (folder / MANIFEST).is_file():
        folder = folder / stage
    loaded = ExportedStage(folder)
    if stage is not None and loaded.stage != stage:
        raise OccfaceError(
            f"{folder / MANIFEST}: holds stage {loaded.stage!r}, expected {stage!r} (tampered?)"
        )
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    """``python loader.py STAGE_DIR``: the stage's inputs and outputs, or its one-line error."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python loader.py EXPORT_DIR/STAGE", file=sys.stderr)
        return 2
    try:
        stage = load_exported(args[0])
    except OccfaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    m = stage.manifest
    platforms = ", ".join(m["function"].get("platforms", []))
    members = m.get("members")
    if members:  # the front end: its members' training steps
        steps = ", ".join(f"{k} step {v.get('step')}" for k, v in members.items())
    else:
        steps = f"step {m.get('step')}"
    print(f"{stage.stage} ({steps}, platforms {platforms})")
    for kind, specs in (("in", stage.inputs), ("out", stage.outputs)):
        for s in specs:
            print(
                f"  {kind} {s['name']}: {s['dtype']}{_shape_text(s['shape'])} {s.get('units', '')}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
