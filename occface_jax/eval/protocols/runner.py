"""What every protocol shares: the ``Protocol`` record, the predictor around the public app API, and
the run (progress bar, resume from the samples already scored, results.json + results.md).

A protocol (``eval/protocols/<name>.py``) turns a dataset root in its published layout into
samples, scores one sample with a predictor (a reconstruction of a photo), and summarises the
scored samples into results and a markdown table. ``OUT/scored.jsonl`` holds one line per scored
sample (written as it is scored), so an interrupted evaluation resumes where it stopped;
``OUT/samples/`` holds per-sample arrays a summary pools (NoW's distances); ``OUT/run.json`` names
the protocol, data and method, and a different one in the same OUT is refused.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.occluders import OCCLUDERS
from occface_jax.errors import OccfaceError
from occface_jax.faces.detect import box_iou
from occface_jax.io import images as imageio
from occface_jax.morphable import geometry

SCORED = "scored.jsonl"
RESULTS = "results.json"
TABLE = "results.md"
RUN = "run.json"
SAMPLES = "samples"


@dataclasses.dataclass(frozen=True)
class Sample:
    """One unit a protocol scores: a unique ``id``, the ``subset`` it is reported under, ``data``
    (paths and metadata the protocol's scorer reads)."""

    id: str
    subset: str
    data: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Predicted:
    """A reconstruction as protocols see it: the face-region mesh of the morphable model
    (``vertices`` (N, 3) mm in the model frame, x left, y up, z to the camera; ``triangles`` (F, 3)
    into them), its 68 landmark vertices ``landmarks3d`` (68, 3) mm, the projected 68 landmarks
    ``landmarks2d`` (68, 2) pixels of the image given, the identity coefficients ``identity`` and
    the 68 landmarks the fit started from (the detector's, ``detected2d``, same pixels) and the
    de-occluded photo ``deoccluded`` (H, W, 3) in [0, 1], the image given with the occluded face
    repainted (as ``deoccluded.png`` of ``occface reconstruct``)."""

    vertices: np.ndarray
    triangles: np.ndarray
    landmarks3d: np.ndarray
    landmarks2d: np.ndarray
    identity: np.ndarray | None = None
    detected2d: np.ndarray | None = None
    deoccluded: np.ndarray | None = None


#: predict(image path or (H, W, 3) float [0, 1], face box (x0, y0, x1, y1) px or None) -> Predicted;
#: a protocol with known landmarks passes ``landmarks=`` (68, 2) px, used instead of detection.
Predict = Callable[..., Predicted]


@dataclasses.dataclass(frozen=True)
class Protocol:
    """``samples(root, **options) -> [Sample]`` (DatasetLayoutError naming the path and the
    ``layout``), ``score(sample, predict, samples_dir) -> dict`` (JSON-able; per-sample arrays go
    to ``samples_dir``), ``summarise(records, samples_dir) -> dict``, ``table(results) -> str``."""

    name: str
    description: str
    layout: str
    samples: Callable[..., list[Sample]]
    score: Callable[[Sample, Predict, Path], dict[str, Any]]
    summarise: Callable[[list[dict[str, Any]], Path], dict[str, Any]]
    table: Callable[[dict[str, Any]], str]
    writes_data: bool = False  # samples() writes the dataset into an empty --data folder
    #: A protocol that scores one trained network, not the reconstruction: ``network(checkpoints)``
    #: builds the predictor its ``score`` calls (``occface evaluate`` then needs --checkpoints).
    network: Callable[[str | Path], Callable[..., Any]] | None = None
    #: Fit config settings (``KEY=VALUE``) the protocol's inputs need, applied unless ``--set`` names
    #: the key, as ``fit_overrides(**options)`` (the options ``samples`` accepts): the synthetic
    #: protocol gives the model's own 68 landmark vertices, projected, unless its landmarks are
    #: detected.
    fit_overrides: Callable[..., tuple[str, ...]] = lambda **options: ()


def occluder_kinds(protocol: str, occluders: str) -> tuple[str, ...]:
    """The occluder kinds of a protocol's ``occluders=`` option ("glasses,hand"; "all": every
    kind of ``data.occluders``; "" none), an unknown kind one line naming the known ones."""
    text = str(occluders).strip()
    kinds = (
        tuple(OCCLUDERS)
        if text == "all"
        else tuple(k.strip() for k in text.split(",") if k.strip())
    )
    unknown = sorted(set(kinds) - set(OCCLUDERS))
    if unknown:
        raise OccfaceError(
            f"{protocol}: occluders={occluders!r}: unknown {unknown[0]!r}; known: all, "
            f"{', '.join(OCCLUDERS)}"
        )
    return kinds


def layout_error(path: Path, what: str, layout: str) -> DatasetLayoutError:
    """The one-line error of a dataset that is not in its published layout."""
    return DatasetLayoutError(f"{path}: {what}; expected layout: {layout}")


def safe_name(sample_id: str) -> str:
    """A file name for a sample id (per-sample arrays)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id)


def mean_std(values: Sequence[float | None]) -> dict[str, Any]:
    """{mean, std, n} of the finite ``values`` (mean and std None when there is none)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if not v.size:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def by_subset(
    records: Sequence[dict[str, Any]], key: str = "subset", order: Sequence[str] | None = None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """(label, records) per value of ``records[i][key]`` (in ``order``, default sorted; empty
    groups left out), then ("all", every record) when there is any."""
    labels = order if order is not None else sorted({r[key] for r in records})
    groups = [(label, [r for r in records if r[key] == label]) for label in labels]
    return [(k, rs) for k, rs in groups if rs] + ([("all", list(records))] if records else [])


def plus_minus(stats: Mapping[str, Any], digits: int = 2) -> str:
    """``mean ± std`` of a :func:`mean_std` result ("-" when empty)."""
    if stats["mean"] is None:
        return "-"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def markdown(
    header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "", digits: int = 3
) -> str:
    """A markdown table (floats to ``digits`` decimals) with an optional note line above."""

    def cell(x: Any) -> str:
        return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)

    lines = [note, ""] if note else []
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ predictor


class ReconstructorPredictor:
    """``predict(image, box, landmarks=None)`` through ``app.pipeline.Reconstructor``: the given
    68 landmarks, else detection (the face whose box overlaps ``box`` most, or the largest), or the
    landmarks in ``box`` when no detector finds one; then the fit. Arrays are written to a
    temporary PNG and loaded as a photo would be."""

    def __init__(self, reconstructor: Any) -> None:
        self.reconstructor = reconstructor
        model = reconstructor.full_model
        self.triangles = np.asarray(model.triangles)[np.asarray(model.face_triangles)]
        self._model = model
        self._tmp = Path(tempfile.mkdtemp(prefix="occface_eval_"))

    def __call__(
        self, image: Any, box: np.ndarray | None = None, landmarks: np.ndarray | None = None
    ) -> Predicted:
        rec = self.reconstruct(image, box, landmarks)
        return self._predicted(rec, rec.scale)

    def reconstruct(
        self, image: Any, box: np.ndarray | None = None, landmarks: np.ndarray | None = None
    ) -> Any:
        """The pipeline's ``Reconstruction`` of the face ``__call__`` scores (same arguments):
        for callers that need more of the fit than :class:`Predicted` holds."""
        if not isinstance(image, (str, Path)):
            image = imageio.save_image(self._tmp / "frame.png", np.asarray(image))
        start = time.perf_counter()
        loaded = imageio.load_image(image)
        if landmarks is not None:  # given: no detection
            given = np.asarray(landmarks, np.float64) * loaded.scale
            return self.reconstructor.reconstruct_face(Path(image), loaded, given, start)
        scaled = (
            None if box is None or not np.isfinite(box).all() else np.asarray(box) * loaded.scale
        )
        try:
            faces = self.reconstructor.detect(loaded.pixels)
            if scaled is not None:
                faces.sort(key=lambda f: -box_iou(f.box, scaled))
                if box_iou(faces[0].box, scaled) < 0.3:
                    raise OccfaceError("no detection on the given box")
            face = faces[0]
        except OccfaceError:
            if scaled is None:
                raise
            face = self.reconstructor.landmarks_in_box(loaded.pixels, scaled)
        return self.reconstructor.reconstruct_face(Path(image), loaded, face, start)

    def _predicted(self, rec: Any, scale: float) -> Predicted:
        vertices = np.asarray(rec.fit.vertices, np.float64)
        deoccluded = rec.deoccluded()
        return Predicted(
            vertices=vertices,
            triangles=self.triangles,
            landmarks3d=np.asarray(geometry.landmarks3d(self._model, vertices)),
            landmarks2d=np.asarray(rec.landmarks_model) / scale,
            identity=np.asarray(rec.fit.coeffs["id"]) if "id" in rec.fit.coeffs else None,
            detected2d=np.asarray(rec.landmarks_detected) / scale,
            deoccluded=np.asarray(deoccluded, np.float32),
        )


class PredictorSetupError(OccfaceError):
    """The predictor could not be built (a bad --checkpoints, no model): the whole run stops,
    it is not one sample's failure."""


class LazyPredictor:
    """A predictor built on its first call (``factory()``): a dataset's layout errors, and a run
    with nothing left to score, cost no model loading."""

    def __init__(self, factory: Callable[[], Predict]) -> None:
        self._factory, self._predict = factory, None

    def __call__(self, image: Any, box: np.ndarray | None = None, **kwargs: Any) -> Predicted:
        if self._predict is None:
            try:
                self._predict = self._factory()
            except OccfaceError as err:
                raise PredictorSetupError(str(err)) from err
        return self._predict(image, box, **kwargs)


def make_predictor(
    config: Any, checkpoints: str | Path | None = None, model_path: str | None = None
) -> ReconstructorPredictor:
    """The predictor of ``occface evaluate``: the fit (``--fit``), or with the trained networks of
    ``checkpoints`` (a training workdir or an export folder)."""
    from occface_jax.app.pipeline import Reconstructor  # the fit stack: only evaluation needs it
    from occface_jax.app.predictors import networks_from_checkpoints
    from occface_jax.morphable import load_model

    model = load_model(model_path, fetch=model_path is None)
    networks = networks_from_checkpoints(checkpoints, model)
    return ReconstructorPredictor(Reconstructor(model, config, **networks.as_kwargs()))


# ------------------------------------------------------------------------------------------ run


def read_scored(out: Path) -> dict[str, dict[str, Any]]:
    """The records of ``out/scored.jsonl`` by id (a torn last line, from a kill, is dropped)."""
    path = out / SCORED
    records: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            records[record["id"]] = record
    return records


def _check_run(out: Path, run: dict[str, Any]) -> None:
    path = out / RUN
    if path.is_file():
        before = json.loads(path.read_text())
        differ = [k for k in run if before.get(k) != run[k]]
        if differ:
            raise OccfaceError(
                f"{out} holds another evaluation "
                f"({', '.join(f'{k} {before.get(k)!r}' for k in differ)}); "
                "use another --out to keep both"
            )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=1))


def evaluate(
    protocol: Protocol,
    data: str | Path,
    out: str | Path,
    predict: Predict,
    method: str = "",
    options: Mapping[str, Any] | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every sample of ``data`` not yet in ``out/scored.jsonl`` (at most ``limit`` in all),
    then write ``results.json`` and ``results.md`` over all scored ones; returns the results. A
    sample that fails (no face, unreadable file) is a failed record, counted in the results."""
    data, out = Path(data), Path(out)
    if protocol.writes_data:
        data.mkdir(parents=True, exist_ok=True)
    if not data.is_dir():
        raise layout_error(data, "no such folder", protocol.layout)
    options = dict(options or {})
    accepted = [k for k in inspect.signature(protocol.samples).parameters if k != "root"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise OccfaceError(
            f"{protocol.name} has no option {unknown[0]!r}; options: {', '.join(accepted) or 'none'}"
        )
    samples = protocol.samples(data, **options)
    if not samples:
        raise layout_error(data, "no samples found", protocol.layout)
    samples = samples[:limit] if limit else samples
    _check_run(
        out,
        {
            "protocol": protocol.name,
            "data": str(data.absolute()),
            "method": method,
            "options": options,
        },
    )
    samples_dir = out / SAMPLES
    samples_dir.mkdir(exist_ok=True)
    done = read_scored(out)
    todo = [s for s in samples if s.id not in done]
    bar = tqdm(
        todo,
        desc=f"evaluate {protocol.name}",
        unit="sample",
        disable=not progress,
        initial=len(samples) - len(todo),
        total=len(samples),
    )
    with (out / SCORED).open("a") as log:
        for sample in bar:
            start = time.perf_counter()
            try:
                record = {"status": "ok", **protocol.score(sample, predict, samples_dir)}
            except PredictorSetupError:
                raise
            except OccfaceError as err:
                record = {"status": "failed", "error": str(err).splitlines()[0]}
            record.update(id=sample.id, subset=sample.subset, seconds=time.perf_counter() - start)
            log.write(json.dumps(record) + "\n")
            log.flush()
            done[sample.id] = record
    records = [done[s.id] for s in samples]
    ok = [r for r in records if r["status"] == "ok"]
    results = {
        "protocol": protocol.name,
        "description": protocol.description,
        "data": str(data.absolute()),
        "method": method,
        "options": options,
        "samples": len(records),
        "failed": len(records) - len(ok),
        "failures": [{"id": r["id"], "error": r["error"]} for r in records if r["status"] != "ok"][
            :20
        ],
        **protocol.summarise(ok, samples_dir),
    }
    (out / RESULTS).write_text(json.dumps(results, indent=1))
    (out / TABLE).write_text(
        f"# {protocol.name}: {protocol.description}\n\n{len(ok)} of {len(records)} samples scored "
        f"({method or 'given predictor'}; data {data}).\n\n" + protocol.table(results)
    )
    return results
