"""``occface reconstruct``, ``occface summarize`` and ``occface demo``: batches of photos to
folders of results.

For each input NAME: ``OUT/NAME/`` holds mesh.obj (+ mesh.mtl and texture.png when the model has
UVs; vertex colours otherwise), mesh.ply, coeffs.npz, landmarks.json, mask.png, deoccluded.png,
overlay.png and report.png (see ``pipeline.write_outputs``), and ``result.json`` (what the folder
is a result of: a digest of the input's bytes, the fit config, the model and the networks); with
``--all-faces`` the further faces go to ``OUT/NAME_face1/``, ... A photo's folders are written
under temporary names (``OUT/.NAME.partial``) and renamed when all are complete, ``NAME/`` last, so
a folder ``NAME/`` with its ``result.json`` is a finished result and nothing else is.

``OUT/summary.json`` (``summary.shard-K-of-N.json`` with ``--shard``) lists every input: ``ok``
(fitted now, or ``reused`` from an earlier run), ``failed`` with its one-line reason, ``skipped``
(a file of an input folder that is not an image) or ``pending`` (not reached when interrupted).

Rerunning the same command skips the photos whose result exists with the same digest;
``--overwrite`` redoes them; a folder NAME that holds anything else stops the run before any
fitting (exit 2). The first SIGINT / SIGTERM stops the batch (``interrupt.StopSignals``, checked
between steps and between a fit's chunks): exit 130 / 143, the summary of what finished, no
half-written folder. ``--batch-size N`` fits N faces (of one photo or several) at once
(``FaceBatches``); a photo is written when all its faces are. ``--shard K/N`` takes entries
K-1, K-1+N, ... of the sorted inputs (names are given over all inputs, so every shard agrees);
``summarize`` merges the shards' summaries. Exit status: 0 all succeeded, 1 any failed, 2 usage.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from skimage import data
from tqdm.auto import tqdm

from occface_jax.app.interrupt import Interrupted, StopSignals, exit_status
from occface_jax.app.pipeline import PreparedFace, Reconstructor, write_outputs
from occface_jax.app.predictors import STAGE_MODELS, available_stages, networks_from_checkpoints
from occface_jax.data.augment import occlude_photo
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.errors import OccfaceError
from occface_jax.faces.detect import FaceDetector, box_iou
from occface_jax.io import images as imageio
from occface_jax.io import mesh as export
from occface_jax.morphable import MorphableModel, load_model

RESULT_FILE = "result.json"  # in OUT/NAME/: the digest that makes the folder a finished result
RESULT_FORMAT = 1  # bump when what goes into a digest changes
PARTIAL_SUFFIX = ".partial"  # OUT/.NAME.partial: a folder being written
OLD_SUFFIX = ".old"  # OUT/.NAME.old: a replaced result on its way out
SUMMARY = "summary.json"
#: Test hook: "SIGNAL@STAGE:INDEX[+hang]" sends SIGNAL to this process at STAGE (detect, fit:
#: before the batch holding its first face is fitted; chunk: before each of that fit's chunks;
#: write: all faces written, not yet renamed; done) of this shard's photo INDEX (0-based); with
#: +hang it then sleeps (a step that never returns to Python, as XLA compiling).
SIGNAL_HOOK = "OCCFACE_RECONSTRUCT_SIGNAL"


class InputError(OccfaceError):
    """Inputs or ``--out`` that the batch cannot start with (exit status 2, one line)."""

    exit_status = 2


# -- inputs and names --------------------------------------------------------------------------
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")  # path separators and control characters
_MAX_NAME_BYTES = 200  # folder names stay under the usual 255-byte limit with suffixes added


def _safe_name(path: Path, taken: set[str]) -> str:
    """A folder name from ``path``'s stem: letters of any script kept, separators and control
    characters replaced, no leading dot; unique in ``taken`` ignoring case (``_2``, ``_3``...)."""
    name = _UNSAFE.sub("_", path.stem).strip()
    name = name.encode()[:_MAX_NAME_BYTES].decode(errors="ignore") or "image"
    if name.startswith("."):
        name = "_" + name[1:]
    base, k = name, 1
    while name.casefold() in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name.casefold())
    return name


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` (1 <= K <= N) -> (K, N); None -> None; InputError otherwise."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise InputError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 2/8")
    return int(match[1]), int(match[2])


def summary_name(shard: tuple[int, int] | None) -> str:
    return SUMMARY if shard is None else f"summary.shard-{shard[0]}-of-{shard[1]}.json"


@dataclasses.dataclass(frozen=True)
class Job:
    """One entry of this shard: an image to reconstruct into ``name`` (``found.skipped`` False,
    ``found.path`` set), a skipped file, or an input naming nothing."""

    found: imageio.Found
    name: str = ""

    @property
    def is_image(self) -> bool:
        return self.found.path is not None and not self.found.skipped

    @property
    def label(self) -> str:
        return str(self.found.path) if self.found.path is not None else self.found.given


def check_out_dir(out_dir: Path) -> None:
    """``--out`` is a folder that exists or can be made, and can be written to; else InputError."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: is a file, not a folder; name a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out_dir, prefix=".occface-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise InputError(f"--out {out_dir}: cannot write there ({err.strerror or err})") from err


def plan(inputs: list[str], out_dir: Path, shard: tuple[int, int] | None = None) -> list[Job]:
    """This shard's jobs, checked before any work: InputError (exit 2) for an input path that
    does not exist, a folder without images, no image at all, or an unusable ``--out``."""
    for item in inputs:
        if not glob.has_magic(item) and not Path(item).exists():
            raise InputError(f"{item}: no such file or folder")
    found = imageio.find_inputs(inputs, exclude=(out_dir,))
    for item in dict.fromkeys(inputs):
        if Path(item).is_dir() and not any(
            f.given == item and f.path is not None and not f.skipped for f in found
        ):
            suffixes = ", ".join(imageio.IMAGE_SUFFIXES)
            raise InputError(f"{item}: folder holds no images ({suffixes})")
    if not any(f.path is not None and not f.skipped for f in found):
        raise InputError("; ".join(f"{f.given}: {f.reason}" for f in found) or "no inputs")
    check_out_dir(out_dir)
    taken = {SUMMARY.casefold()}
    jobs = [
        Job(f, _safe_name(f.path, taken) if f.path is not None and not f.skipped else "")
        for f in found
    ]
    if shard is not None:  # interleaved, over all entries: each exactly once across the shards
        k, n = shard
        jobs = jobs[k - 1 :: n]
    return jobs


# -- digests: what a result folder is a result of -----------------------------------------------
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_fingerprint(
    model: MorphableModel,
    config: ml_collections.ConfigDict,
    all_faces: bool,
    checkpoints: str | None,
) -> str:
    """A digest of everything but the photo that decides a result: the model's arrays and kinds,
    the fit config, ``all_faces`` and the networks' files (names, sizes, times)."""
    h = hashlib.sha256(f"occface reconstruct {RESULT_FORMAT}".encode())
    for leaf in jax.tree.leaves(model):
        arr = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes())
    uv = None if model.uv is None else (model.uv.coords.tobytes(), model.uv.triangles.tobytes())
    h.update(repr((model.name, model.exp_kind, model.albedo_kind)).encode())
    h.update(hashlib.sha256(repr(uv).encode()).digest())
    h.update(json.dumps(config.to_dict(), sort_keys=True, default=str).encode())
    h.update(repr(bool(all_faces)).encode())
    if checkpoints is not None:
        root = Path(checkpoints)
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            stat = f.stat()
            h.update(f"{f.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def result_digest(input_path: Path, fingerprint: str) -> str:
    """The digest ``OUT/NAME/result.json`` carries: the input's bytes and the run fingerprint."""
    return hashlib.sha256(f"{_sha256_file(input_path)}:{fingerprint}".encode()).hexdigest()


def read_result(folder: Path) -> dict | None:
    """``folder/result.json`` as a dict, or None when there is none or it does not parse."""
    try:
        record = json.loads((folder / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "digest" in record else None


def _entry_in(out_dir: Path, stored: dict) -> dict:
    """A summary entry from a result.json's stored entry (folders relative to OUT)."""
    faces = [
        {
            **face,
            "folder": str(out_dir / face["folder"]),
            "files": {k: str(out_dir / face["folder"] / v) for k, v in face["files"].items()},
        }
        for face in stored["faces"]
    ]
    return {**stored, "faces": faces}


def _is_complete(out_dir: Path, record: dict) -> bool:
    faces = record.get("entry", {}).get("faces", [])
    return bool(faces) and all((out_dir / f["folder"]).is_dir() for f in faces)


# -- writing a photo's folders -----------------------------------------------------------------
def _hidden(out_dir: Path, name: str, suffix: str) -> Path:
    return out_dir / f".{name}{suffix}"


def remove_leftovers(out_dir: Path, names: set[str]) -> int:
    """Remove the temporary folders (``.NAME.partial``, ``.NAME.old``, and ``_faceK`` ones) a
    killed run left for ``names`` (this shard's: other shards' are theirs); returns how many."""
    removed = 0
    for entry in out_dir.iterdir():
        base = entry.name.removeprefix(".")
        for suffix in (PARTIAL_SUFFIX, OLD_SUFFIX):
            base = base.removesuffix(suffix)
        if base == entry.name.removeprefix(".") or not entry.name.startswith("."):
            continue
        if (base in names or re.sub(r"_face\d+$", "", base) in names) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed


def _replace_dir(temp: Path, final: Path) -> None:
    """Rename ``temp`` to ``final``; an existing ``final`` is moved aside first and removed."""
    if final.exists():
        old = final.with_name(f".{final.name}{OLD_SUFFIX}")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        temp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        temp.rename(final)


class Batch:
    """The state of one ``run``: entries so far, the folders being written, the summary. A lock
    guards them against the stop watchdog, which writes the summary as the process ends."""

    def __init__(
        self, out_dir: Path, summary_path: Path, header: dict[str, Any], jobs: list[Job]
    ) -> None:
        self.out_dir = out_dir
        self.summary_path = summary_path
        self.header = header
        self.order = {job.label: k for k, job in enumerate(jobs)}  # the summary's order
        self.entries: list[dict] = []
        self.pending: list[Job] = []
        self.partial: set[Path] = set()
        self.lock = threading.Lock()

    def summary(self, interrupted: int | None) -> dict[str, Any]:
        entries = self.entries + [{"input": j.label, "status": "pending"} for j in self.pending]
        entries.sort(key=lambda e: self.order.get(e["input"], len(self.order)))
        counts = {s: sum(e["status"] == s for e in entries) for s in ("ok", "failed", "skipped")}
        seconds = [e["seconds"] for e in entries if e["status"] == "ok" and not e.get("reused")]
        return {
            "succeeded": counts["ok"],
            "failed": counts["failed"],
            "skipped": counts["skipped"],
            "reused": sum(bool(e.get("reused")) for e in entries),
            "pending": len(self.pending),
            "faces": sum(len(e.get("faces", [])) for e in entries),
            "interrupted": None if interrupted is None else signal.Signals(interrupted).name,
            "median_seconds": float(np.median(seconds)) if seconds else None,
            **self.header,
            "images": entries,
        }

    def write_summary(self, interrupted: int | None = None) -> dict[str, Any]:
        """Write the summary atomically (a temporary file renamed over it); returns it."""
        summary = self.summary(interrupted)
        temp = self.summary_path.with_name(f".{self.summary_path.name}{PARTIAL_SUFFIX}")
        export.write_json(temp, summary)
        os.replace(temp, self.summary_path)
        return summary

    def discard_partial(self) -> None:
        for folder in list(self.partial):
            shutil.rmtree(folder, ignore_errors=True)
        self.partial.clear()

    def on_force(self, signum: int) -> None:
        """The watchdog's last act: the summary of what finished, no half-written folder."""
        acquired = self.lock.acquire(timeout=5.0)
        try:
            self.discard_partial()
            self.write_summary(signum)
            print(_stopped_line(signum, self.summary_path, forced=True), file=sys.stderr)
        finally:
            if acquired:
                self.lock.release()


def _stopped_line(signum: int, summary_path: Path, forced: bool = False) -> str:
    """The last line of a stopped batch; ``forced``: by the watchdog, the step not finished."""
    name = signal.Signals(signum).name
    how = " (forced: a step did not return in time)" if forced else ""
    return f"occface reconstruct: stopped by {name}{how}; what finished is in {summary_path}"


def _hook(stage: str, index: int) -> None:
    """The ``SIGNAL_HOOK`` test hook (see there)."""
    spec = os.environ.get(SIGNAL_HOOK, "")
    match = re.fullmatch(r"(SIG[A-Z]+)@(\w+):(\d+)(\+hang)?", spec)
    if match and match[2] == stage and int(match[3]) == index:
        os.kill(os.getpid(), getattr(signal, match[1]))
        if match[4]:
            time.sleep(3600)


def _faces_entry(name: str, k: int, rec: Any, files: dict[str, str]) -> dict:
    """One face of a stored entry: folder and files relative to OUT."""
    folder = name if k == 0 else f"{name}_face{k}"
    return {
        "folder": folder,
        "detector": rec.face.detector,
        "landmarks": rec.face.landmark_source,
        "files": {kind: Path(path).name for kind, path in files.items()},
    }


@dataclasses.dataclass
class PhotoWork:
    """A photo whose faces are in flight: each is written into its temporary folder as soon as
    its batch is fitted; the photo is complete (renamed into place) when all are."""

    job: Job
    index: int
    start: float
    faces: int = 0  # detected
    temps: list[Path] = dataclasses.field(default_factory=list)
    stored: dict[int, dict] = dataclasses.field(default_factory=dict)
    counted: int = 0  # progress units counted (one per face written)
    failed: bool = False


class FaceBatches:
    """Collects the faces of successive photos and fits them ``batch_size`` at a time
    (``Reconstructor.fit_faces``), writing each photo when all its faces are done; at
    ``batch_size`` 1 it is the one-face-at-a-time order. A photo holds one progress unit until
    it is detected, then one per face."""

    def __init__(
        self,
        reconstructor: Reconstructor,
        batch: Batch,
        stop: StopSignals,
        digest_of: Any,
        bar: Any,
        batch_size: int,
        debug: bool,
    ) -> None:
        self.reconstructor = reconstructor
        self.batch = batch
        self.stop = stop
        self.digest_of = digest_of
        self.bar = bar
        self.batch_size = int(batch_size)
        self.debug = debug
        self.queue: list[tuple[PhotoWork, int, PreparedFace]] = []

    def add_photo(self, job: Job, index: int) -> None:
        """Load and detect the photo, prepare its faces into the queue; fit each full batch."""
        path = job.found.path
        assert path is not None
        work = PhotoWork(job, index, time.perf_counter())
        try:
            loaded = imageio.load_image(path)
            self.stop.check()
            _hook("detect", index)
            faces = self.reconstructor.detect(loaded.pixels)
            work.faces = len(faces)
            self.bar.total += len(faces) - 1
            self.bar.refresh()
            for k, face in enumerate(faces):
                self.stop.check()
                prepared = self.reconstructor.prepare_face(path, loaded, face)
                self.queue.append((work, k, prepared))
                del prepared
                if len(self.queue) >= self.batch_size:
                    self.fit_queued()
                if work.failed:
                    return
        except Exception as err:  # noqa: BLE001 - one bad image never stops the batch
            self.fail(work, err)

    def flush(self) -> None:
        """Fit what is left (a short batch, padded to the batch size)."""
        while self.queue:
            self.fit_queued()

    def fit_queued(self) -> None:
        """Fit the first ``batch_size`` queued faces and write them; a batch that fails is fitted
        again face by face, so that only the photo whose face fails fails."""
        items, self.queue = self.queue[: self.batch_size], self.queue[self.batch_size :]
        firsts = [work.index for work, k, _ in items if k == 0]
        for index in firsts:
            _hook("fit", index)

        def check() -> None:  # between the fit's chunks
            for index in firsts:
                _hook("chunk", index)
            self.stop.check()

        prepared = [p for _, _, p in items]
        try:
            fitted: list[Any] = self.reconstructor.fit_faces(prepared, self.batch_size, check)
        except Exception as err:  # noqa: BLE001
            if len(items) == 1 or self.debug:
                fitted = [err] * len(items)
            else:
                fitted = []
                for p in prepared:
                    try:
                        fitted.extend(self.reconstructor.fit_faces([p], self.batch_size, check))
                    except Exception as one:  # noqa: BLE001
                        fitted.append(one)
        del prepared
        for (work, k, prepared), result in zip(items, fitted, strict=True):
            if not work.failed:
                self.write_face(work, k, prepared, result)

    def write_face(self, work: PhotoWork, k: int, prepared: PreparedFace, fitted: Any) -> None:
        """Face ``k`` of a photo into its temporary folder; the photo complete after its last."""
        try:
            if isinstance(fitted, Exception):
                raise fitted
            rec = self.reconstructor.finish_face(prepared, fitted, work.start)
            self.stop.check()
            name, out_dir = work.job.name, self.batch.out_dir
            temp = _hidden(out_dir, name if k == 0 else f"{name}_face{k}", PARTIAL_SUFFIX)
            shutil.rmtree(temp, ignore_errors=True)
            self.batch.partial.add(temp)
            work.temps.append(temp)
            files = write_outputs(rec, temp, self.reconstructor.full_model)
            work.stored[k] = _faces_entry(name, k, rec, files)
            del rec
            work.counted += 1
            self.bar.update(1)
            if len(work.stored) == work.faces:
                self.complete(work)
        except Exception as err:  # noqa: BLE001
            self.fail(work, err)

    def complete(self, work: PhotoWork) -> None:
        """``result.json`` into face 0's folder, then every folder renamed into place (the
        further faces first, NAME/ last) under the batch's lock."""
        batch, path = self.batch, work.job.found.path
        stored = [work.stored[k] for k in range(work.faces)]
        temps = {
            face["folder"]: t for face, t in zip(work.stored.values(), work.temps, strict=True)
        }
        entry = {
            "input": str(path),
            "name": work.job.name,
            "status": "ok",
            "faces": stored,
            "seconds": round(time.perf_counter() - work.start, 3),
        }
        export.write_json(
            temps[stored[0]["folder"]] / RESULT_FILE,
            {
                "format": RESULT_FORMAT,
                "digest": self.digest_of(path),
                "input": str(path),
                "pid": os.getpid(),
                "written": time.time(),
                "entry": entry,
            },
        )
        _hook("write", work.index)
        with batch.lock:
            for face in reversed(stored):
                temp = temps[face["folder"]]
                _replace_dir(temp, batch.out_dir / face["folder"])
                batch.partial.discard(temp)
            batch.entries.append(_entry_in(batch.out_dir, entry))
            batch.pending.remove(work.job)
        _hook("done", work.index)

    def fail(self, work: PhotoWork, err: Exception) -> None:
        """The photo failed: its folders removed, its queued faces dropped, its progress units
        counted, a failed entry with the error's first line."""
        if self.debug and not isinstance(err, OccfaceError):
            raise err
        work.failed = True
        self.queue = [item for item in self.queue if item[0] is not work]
        for temp in work.temps:
            shutil.rmtree(temp, ignore_errors=True)
            self.batch.partial.discard(temp)
        self.bar.update(max(work.faces, 1) - work.counted)
        failure = str(err) if isinstance(err, OccfaceError) else f"{type(err).__name__}: {err}"
        error = (failure.strip().splitlines() or ["(no message)"])[0]
        job = work.job
        tqdm.write(f"occface reconstruct: {_fail_line(job.label, error)}", file=sys.stderr)
        with self.batch.lock:
            self.batch.entries.append(
                {
                    "input": job.label,
                    "name": job.name,
                    "status": "failed",
                    "error": error,
                    "seconds": round(time.perf_counter() - work.start, 3),
                }
            )
            self.batch.pending.remove(job)


def _fail_line(label: str, error: str) -> str:
    return error if label in error else f"{label}: {error}"


def run(
    inputs: list[str],
    out_dir: Path,
    model_path: str | None,
    config: ml_collections.ConfigDict,
    all_faces: bool = False,
    checkpoints: str | None = None,
    progress: bool = True,
    debug: bool = False,
    overwrite: bool = False,
    shard: str | tuple[int, int] | None = None,
    batch_size: int = 1,
) -> int:
    """Reconstruct every input; write per-image folders and the summary; return the exit status
    (0 all succeeded, 1 any failed, 130 / 143 stopped by SIGINT / SIGTERM; usage problems raise
    InputError before any fitting). ``batch_size`` faces (of one photo or several) are fitted
    at once (``Fitter.fit_batch``); a photo is written when all its faces are."""
    if int(batch_size) < 1:
        raise InputError(f"--batch-size {batch_size}: must be at least 1")
    shard = shard if isinstance(shard, tuple) or shard is None else parse_shard(shard)
    out_dir = Path(out_dir)
    state: dict[str, Batch] = {}  # the batch, once there is one (for the watchdog)

    def on_force(signum: int) -> None:
        if "batch" in state:
            state["batch"].on_force(signum)

    with StopSignals(on_force) as stop:
        try:
            return _run(
                inputs, out_dir, model_path, config, all_faces, checkpoints, progress, debug,
                overwrite, shard, stop, state, batch_size,
            )  # fmt: skip
        except Interrupted as stopped:
            batch = state.get("batch")
            if batch is not None:
                with batch.lock:
                    batch.discard_partial()
                    batch.write_summary(stopped.signum)
                print(_stopped_line(stopped.signum, batch.summary_path), file=sys.stderr)
            else:
                name = signal.Signals(stopped.signum).name
                print(f"occface reconstruct: stopped by {name}", file=sys.stderr)
            return exit_status(stopped.signum)


def _resume(
    jobs: list[Job], out_dir: Path, digest_of: Any, overwrite: bool
) -> tuple[dict[str, dict], list[str]]:
    """(finished results by name, names whose folder holds something else) among ``jobs``."""
    done: dict[str, dict] = {}
    conflicts: list[str] = []
    for job in jobs:
        folder = out_dir / job.name
        if not job.is_image or not folder.exists() or overwrite:
            continue
        record = read_result(folder)
        if (
            record is not None
            and _is_complete(out_dir, record)
            and record["digest"] == digest_of(job.found.path)
        ):
            done[job.name] = {**_entry_in(out_dir, record["entry"]), "reused": True}
        else:
            conflicts.append(job.name)
    return done, conflicts


def _run(
    inputs: list[str],
    out_dir: Path,
    model_path: str | None,
    config: ml_collections.ConfigDict,
    all_faces: bool,
    checkpoints: str | None,
    progress: bool,
    debug: bool,
    overwrite: bool,
    shard: tuple[int, int] | None,
    stop: StopSignals,
    state: dict[str, Batch],
    batch_size: int = 1,
) -> int:
    if checkpoints is not None and not Path(checkpoints).is_dir():
        raise InputError(f"--checkpoints {checkpoints}: no such folder")
    jobs = plan(inputs, out_dir, shard)
    stages = available_stages(checkpoints) if checkpoints is not None else []
    if checkpoints is not None and not stages:
        raise InputError(
            f"--checkpoints {checkpoints}: no trained stage in it "
            f"(expected {', '.join(f'{s}/' for s in STAGE_MODELS)})"
        )
    model = load_model(model_path, fetch=model_path is None)
    networks = networks_from_checkpoints(checkpoints, model)  # checked against the model's layout
    stop.check()
    fingerprint = run_fingerprint(model, config, all_faces, checkpoints)

    def digest_of(path: Path) -> str:
        return result_digest(path, fingerprint)

    done, conflicts = _resume(jobs, out_dir, digest_of, overwrite)
    if conflicts:
        raise InputError(
            f"--out {out_dir}: {len(conflicts)} folder(s) hold something other than this "
            f"command's result for the same photo (first: {conflicts[0]}; another input, config "
            "or model); --overwrite replaces them, or choose another --out"
        )
    remove_leftovers(out_dir, {j.name for j in jobs if j.is_image})
    reconstructor = Reconstructor(model, config, all_faces=all_faces, **networks.as_kwargs())
    header = {
        "model": model.summary(),
        "config": config.to_dict(),
        "fingerprint": fingerprint,
        "shard": list(shard) if shard is not None else None,
    }
    batch = Batch(out_dir, out_dir / summary_name(shard), header, jobs)
    state["batch"] = batch
    todo = [j for j in jobs if j.is_image and j.name not in done]
    if done:
        print(
            f"occface reconstruct: {len(done)} of {len(done) + len(todo)} image(s) already done "
            f"in {out_dir}, skipped (--overwrite redoes them)",
            file=sys.stderr,
        )
    batch.pending = list(todo)
    with batch.lock:
        for job in jobs:
            if job.name in done:
                batch.entries.append(done[job.name])
            elif not job.is_image:
                f = job.found
                status, key = ("skipped", "reason") if f.skipped else ("failed", "error")
                batch.entries.append({"input": job.label, "status": status, key: f.reason})
                if not f.skipped:
                    print(f"occface reconstruct: {f.given}: {f.reason}", file=sys.stderr)
    bar = tqdm(total=len(todo), desc="reconstructing", unit="face", disable=not progress)
    faces = FaceBatches(reconstructor, batch, stop, digest_of, bar, batch_size, debug)
    for index, job in enumerate(todo):
        stop.check()
        faces.add_photo(job, index)
    faces.flush()
    bar.close()
    with batch.lock:
        summary = batch.write_summary()
    n_images = summary["succeeded"] + summary["failed"]
    reused = f" ({summary['reused']} already done)" if summary["reused"] else ""
    skipped = f", {summary['skipped']} file(s) skipped (not images)" if summary["skipped"] else ""
    print(
        f"{summary['succeeded']} of {n_images} image(s) reconstructed{reused}, "
        f"{summary['failed']} failed{skipped} into {out_dir} ({batch.summary_path.name})"
    )
    return 0 if summary["failed"] == 0 else 1


# -- merging shards ------------------------------------------------------------------------------
def summarize(paths: list[str], out: Path | None = None) -> int:
    """Merge the summaries in ``paths`` (folders: their summary*.json; or the files) into one,
    written to ``out`` (default: the first folder's summary.json); one line of totals. Exit 1 when
    an image failed or is pending, a shard is missing, or an input appears twice."""
    files: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("summary.shard-*-of-*.json")) or sorted(p.glob(SUMMARY))
            if not found:
                raise InputError(f"{item}: no summary.json or summary.shard-K-of-N.json there")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{item}: no such file or folder")
    summaries = []
    for f in dict.fromkeys(files):
        try:
            summaries.append(json.loads(f.read_text()))
        except (OSError, ValueError) as err:
            raise OccfaceError(f"{f}: not a readable summary ({err})") from err
    fingerprints = {s.get("fingerprint") for s in summaries}
    shards = {tuple(s["shard"]) for s in summaries if s.get("shard")}
    counts = {n for _, n in shards}
    missing = sorted(set(range(1, max(counts) + 1)) - {k for k, _ in shards}) if counts else []
    entries = [e for s in summaries for e in s["images"]]
    inputs = [e["input"] for e in entries]
    twice = sorted({i for i in inputs if inputs.count(i) > 1})
    status = {s: sum(e["status"] == s for e in entries) for s in ("ok", "failed", "skipped")}
    seconds = [e["seconds"] for e in entries if e["status"] == "ok" and not e.get("reused")]
    merged = {
        "succeeded": status["ok"],
        "failed": status["failed"],
        "skipped": status["skipped"],
        "reused": sum(bool(e.get("reused")) for e in entries),
        "pending": sum(e["status"] == "pending" for e in entries),
        "faces": sum(len(e.get("faces", [])) for e in entries),
        "interrupted": sorted({s["interrupted"] for s in summaries if s.get("interrupted")}),
        "median_seconds": float(np.median(seconds)) if seconds else None,
        "merged_from": [str(f) for f in dict.fromkeys(files)],
        "missing_shards": [f"{k}/{max(counts)}" for k in missing],
        "duplicate_inputs": twice,
        "model": summaries[0].get("model"),
        "config": summaries[0].get("config"),
        "fingerprint": summaries[0].get("fingerprint") if len(fingerprints) == 1 else None,
        "images": entries,
    }
    out = Path(out) if out is not None else Path(paths[0]) / SUMMARY
    if out.is_dir():
        out = out / SUMMARY
    export.write_json(out, merged)
    problems = []
    if missing:
        problems.append(f"missing shard(s) {', '.join(merged['missing_shards'])}")
    if len(counts) > 1 or len(fingerprints) > 1:
        problems.append("the summaries come from different runs (shard counts, config or model)")
    if twice:
        problems.append(f"{len(twice)} input(s) appear twice (first: {twice[0]})")
    if merged["pending"]:
        problems.append(f"{merged['pending']} pending (interrupted)")
    print(
        f"{status['ok']} of {status['ok'] + status['failed']} image(s) reconstructed, "
        f"{status['failed']} failed, {status['skipped']} skipped, from {len(summaries)} "
        f"summar{'y' if len(summaries) == 1 else 'ies'} into {out}"
        + (f"; {'; '.join(problems)}" if problems else "")
    )
    return 0 if not problems and status["failed"] == 0 else 1


# -- the demo -----------------------------------------------------------------------------------
def make_demo_image(out_path: Path, seed: int = 0, tries: int = 20) -> Path:
    """scikit-image's public-domain astronaut portrait with an occluder drawn by the data engine
    (a cup, food or a microphone) pasted over the lower face. Seeds are tried in order until the
    face detector still finds the face (a face detector that cannot see the face leaves nothing to
    reconstruct; that case is reported, not hidden, for user photos)."""
    photo = data.astronaut().astype(np.float32) / 255.0
    detector = FaceDetector()
    face = detector.detect(photo)[0]
    config = OcclusionConfig(
        kinds=("cup", "food", "microphone"), count=(1, 1), coverage=(0.15, 0.3)
    )
    for k in range(tries):
        occluded = occlude_photo(
            photo, np.random.default_rng(seed + k), landmarks=face.landmarks, config=config
        )["occluded"]
        found = detector.boxes(occluded)
        if any(box_iou(box, face.box) > 0.5 for box, _, _ in found):
            break
    return imageio.save_image(out_path, occluded)


def demo(
    out_dir: Path,
    model_path: str | None,
    config: ml_collections.ConfigDict,
    checkpoints: str | None = None,
    progress: bool = True,
    debug: bool = False,
) -> int:
    """Make the occluded astronaut, reconstruct it into ``out_dir`` (with the trained networks in
    ``checkpoints`` when given), print the paths. The demo always redoes its reconstruction."""
    check_out_dir(out_dir)
    image = make_demo_image(out_dir / "astronaut_occluded.png")
    print(f"input: {image}")
    status = run(
        [str(image)],
        out_dir,
        model_path,
        config,
        checkpoints=checkpoints,
        progress=progress,
        debug=debug,
        overwrite=True,
    )
    folder = out_dir / "astronaut_occluded"
    names = ("report.png", "mesh.obj", "texture.png", "mesh.ply", "overlay.png", "deoccluded.png")
    for name in (*names, "mask.png"):
        if (folder / name).exists():
            print(f"  {folder / name}")
    return status
