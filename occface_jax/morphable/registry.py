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

import functools
import os
from pathlib import Path

from occface_jax.errors import ModelFileError, ModelNotFoundError
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


@functools.lru_cache(maxsize=4)
def _load_cached(path_str: str, _mtime: int) -> MorphableModel:
    from occface_jax.morphable import bfm, ict, io

    path = Path(path_str)
    if path.is_dir():
        if (path / ict.ICT_NEUTRAL).is_file():
            return io.model_from_fields(ict.convert_ict(path), source=str(path))
        if (path / "01_MorphableModel.mat").is_file():
            return bfm.load_bfm09(path)
        raise ModelFileError(
            f"{path} is a folder but holds neither an ICT-FaceKit model "
            f"({ict.ICT_NEUTRAL}) nor BFM09 (01_MorphableModel.mat)"
        )
    if path.suffix == ".mat":
        return bfm.load_bfm_front(path)
    return ict.attach_uvs(io.load_npz_model(path), path)


def load_model(path: str | os.PathLike | None = None, fetch: bool = False) -> MorphableModel:
    """The morphable model at ``path``, else the default one; with ``fetch`` a missing default is
    downloaded and converted first (``occface fetch-model``)."""
    try:
        return load_model_file(find_model(path))
    except ModelNotFoundError:
        if not fetch or path is not None:
            raise
    from occface_jax.morphable.fetch import fetch_default_model

    return load_model_file(fetch_default_model())
