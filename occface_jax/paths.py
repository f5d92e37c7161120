"""Where the project finds shared data and keeps its cache.

- ``shared_dir()``: env ``OCCFACE_SHARED``, else ``../shared`` relative to the project root (the folder
  holding ``pyproject.toml``); the current directory's ``../shared`` is tried as well.
- ``cache_dir()``: env ``OCCFACE_CACHE``, else ``$XDG_CACHE_HOME/occface_jax`` (``~/.cache/occface_jax``).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """The shared data folder, or None when none exists."""
    env = os.environ.get("OCCFACE_SHARED")
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    for candidate in (PROJECT_ROOT.parent / "shared", Path.cwd().parent / "shared"):
        if candidate.is_dir():
            return candidate
    return None


def cache_dir(create: bool = True) -> Path:
    """The user cache folder for converted models and weights (created unless ``create`` is False)."""
    env = os.environ.get("OCCFACE_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "occface_jax"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
