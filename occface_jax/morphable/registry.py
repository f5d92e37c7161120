"""Finding and loading a morphable model by path or by the default resolution order.

Resolution order for the default model: an explicit path (``--model``), env ``OCCFACE_MODEL``,
``$OCCFACE_SHARED/models/ict_face_default.npz``, then ``<cache>/models/ict_face_default.npz``
(where ``occface fetch-model`` puts it). A path may name any supported format:
the project's ``.npz``; Deep3DFaceRecon's ``BFM_model_front.mat``; a folder holding BFM09
(``01_MorphableModel.mat`` + companions); or an ICT-FaceKit ``FaceXModel`` folder.
An ICT-derived npz without UVs gets them from ICT's neutral OBJ when one is found
(``occface_jax.morphable.ict.attach_uvs``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path

from occface_jax.errors import ModelFileError, ModelNotFoundError
from occface_jax.morphable import bfm, ict, io
from occface_jax.morphable.fetch import fetch_default_model
from occface_jax.morphable.model import MorphableModel
from occface_jax.paths import cache_dir, shared_dir

DEFAULT_MODEL_FILE = "ict_face_default.npz"


def default_model_candidates() -> list[Path]:
    """Where the default model is looked for, in order (explicit paths excluded)."""
    out = []
    env = os.environ.get("OCCFACE_MODEL")
    if env:
        out.append(Path(env).expanduser())
    shared = shared_dir()
    if shared is not None:
        out.append(shared / "models" / DEFAULT_MODEL_FILE)
    out.append(cache_dir(create=False) / "models" / DEFAULT_MODEL_FILE)
    return out


def find_model(path: str | os.PathLike | None = None) -> Path:
    """The model path to use; ModelNotFoundError (saying what to do) when there is none."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.exists():
            raise ModelFileError(f"model path {path} does not exist")
        return path
    candidates = default_model_candidates()
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ModelNotFoundError(
        f"no morphable model found (looked in {looked}); run `occface fetch-model` to download "
        "the default ICT-FaceKit model, or pass --model PATH"
    )


def load_model_file(path: str | os.PathLike) -> MorphableModel:
    """Load a model from a path of any supported format (numpy arrays, checked)."""
    path = Path(path)
    stat = path.stat() if path.exists() else None
    return _load_cached(str(path.resolve()), stat.st_mtime_ns if stat else 0)


@dataclasses.dataclass(frozen=True)
class ModelFormat:
    """A file format a morphable model can come in: ``matches(path)`` says whether ``path`` is one,
    ``load(path)`` reads it (numpy arrays, checked)."""

    name: str
    matches: Callable[[Path], bool]
    load: Callable[[Path], MorphableModel]


#: The formats :func:`load_model_file` reads, tried in order. A new format is one module of
#: ``morphable/`` (its loader) and one entry here.
FORMATS: tuple[ModelFormat, ...] = (
    ModelFormat(
        f"ICT-FaceKit FaceXModel folder ({ict.ICT_NEUTRAL})",
        lambda p: p.is_dir() and (p / ict.ICT_NEUTRAL).is_file(),
        lambda p: io.model_from_fields(ict.convert_ict(p), source=str(p)),
    ),
    ModelFormat(
        "BFM09 folder (01_MorphableModel.mat)",
        lambda p: p.is_dir() and (p / "01_MorphableModel.mat").is_file(),
        bfm.load_bfm09,
    ),
    ModelFormat(
        "Deep3DFaceRecon BFM_model_front.mat", lambda p: p.suffix == ".mat", bfm.load_bfm_front
    ),
    ModelFormat(
        "occface_jax .npz",
        lambda p: not p.is_dir(),
        lambda p: ict.attach_uvs(io.load_npz_model(p), p),
    ),
)


@functools.lru_cache(maxsize=4)
def _load_cached(path_str: str, _mtime: int) -> MorphableModel:
    path = Path(path_str)
    for fmt in FORMATS:
        if fmt.matches(path):
            return fmt.load(path)
    raise ModelFileError(
        f"{path} is a folder but holds no known model ({'; '.join(f.name for f in FORMATS[:2])})"
    )


def load_model(path: str | os.PathLike | None = None, fetch: bool = False) -> MorphableModel:
    """The morphable model at ``path``, else the default one; with ``fetch`` a missing default is
    downloaded and converted first (``occface fetch-model``)."""
    try:
        return load_model_file(find_model(path))
    except ModelNotFoundError:
        if not fetch or path is not None:
            raise
    return load_model_file(fetch_default_model())
