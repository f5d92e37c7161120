"""Loading ``configs/NAME.py`` files (ml_collections ``get_config(variant)``) by name or path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import ml_collections

from occface_jax.errors import OccfaceError
from occface_jax.paths import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "configs"


def load_config(name_or_path: str, variant: str = "") -> ml_collections.ConfigDict:
    """``get_config(variant)`` of ``configs/<name>.py`` or of the file at ``name_or_path``."""
    path = Path(name_or_path)
    if path.suffix != ".py":
        path = CONFIG_DIR / f"{name_or_path}.py"
    if not path.is_file():
        raise OccfaceError(f"config file {path} not found")
    spec = importlib.util.spec_from_file_location(f"occface_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise OccfaceError(f"{path} defines no get_config()")
    try:
        return module.get_config(variant) if variant else module.get_config()
    except ValueError as err:
        raise OccfaceError(f"{path}: {err}") from err
