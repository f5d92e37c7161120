"""Stage configs: ``occface_jax/configs/<name>.py`` files (ml_collections ``get_config(variant)``),
packaged with the project, loaded by name or by the path of a config file of one's own."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import ml_collections

from occface_jax.errors import OccfaceError

CONFIG_PACKAGE = "occface_jax.configs"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def config_names() -> list[str]:
    """The names of the packaged configs (``fit``, ``mask``, ...)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.py") if not p.stem.startswith("_"))


def load_config(name_or_path: str, variant: str = "") -> ml_collections.ConfigDict:
    """``get_config(variant)`` of the packaged config ``name_or_path`` or of the file at that path."""
    path = Path(name_or_path)
    if path.suffix == ".py":
        if not path.is_file():
            raise OccfaceError(f"config file {path} not found")
        spec = importlib.util.spec_from_file_location(f"occface_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        where = str(path)
    else:
        if name_or_path not in config_names():
            raise OccfaceError(
                f"no config named {name_or_path!r}; known: {', '.join(config_names())}"
            )
        module = importlib.import_module(f"{CONFIG_PACKAGE}.{name_or_path}")
        where = f"configs/{name_or_path}.py"
    if not hasattr(module, "get_config"):
        raise OccfaceError(f"{where} defines no get_config()")
    try:
        return module.get_config(variant) if variant else module.get_config()
    except ValueError as err:
        raise OccfaceError(f"{where}: {err}") from err
