"""Stage configs: ``occface_jax/configs/<name>.py`` files (ml_collections ``get_config(variant)``),
packaged with the project, loaded by name or by the path of a config file of one's own, and typed
``KEY=VALUE`` overrides (``occface ... --set train.steps=500``).

Override rules (:func:`apply_overrides`): the default value's type decides how a value is read.

| default | accepted | example |
| --- | --- | --- |
| bool | ``true``/``false`` (or ``True``/``False``) only | ``train.flip=false`` |
| int | an integer literal, range by name (below) | ``train.steps=500`` |
| float | any finite number (ints too) | ``lr=0.01`` |
| str | the text as it is | ``data.source=photos`` |
| tuple / list | comma-separated items, optionally in brackets, each read as the default's items | ``data.occlusion.coverage=(0.1,0.3)`` |

A tuple of numbers keeps its length (it is a range or a vector); a tuple of strings may have any
length (>= 1). Integer ranges go by the last part of the key: sizes, periods and network widths
(:data:`POSITIVE_INT_NAMES`) must be >= 1; every other integer setting in the packaged configs is a
count, a step number, a seed or a pixel radius, so must be >= 0.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections

from occface_jax.errors import OccfaceError

CONFIG_PACKAGE = "occface_jax.configs"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: Integer settings that must be >= 1, by the last part of their key (a regular expression matched
#: in full): sizes (``batch_size``, ``image_size``, ``validation_size`` is the exception, see
#: :data:`NON_NEGATIVE_SIZE_NAMES`), periods (``log_every``) and network widths and depths.
POSITIVE_INT_NAMES = r"(.*_)?size|.*_every|features|depth|.*_groups"
#: Sizes for which 0 is meaningful (nothing held out).
NON_NEGATIVE_SIZE_NAMES = ("validation_size",)


def config_names() -> list[str]:
    """The names of the packaged configs (``fit``, ``mask``, ...)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.py") if not p.stem.startswith("_"))


def load_config(name_or_path: str, variant: str = "") -> ml_collections.ConfigDict:
    """``get_config(variant)`` of the packaged config ``name_or_path`` or of the file at that path
    (a name ending in ``.py``). Raises OccfaceError (one line) for an unknown name, a missing file,
    a file that fails to import or has no ``get_config``, and a variant its ``get_config`` refuses."""
    path = Path(name_or_path)
    if path.suffix == ".py":
        if not path.is_file():
            raise OccfaceError(f"config file {path} not found")
        spec = importlib.util.spec_from_file_location(f"occface_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 - a user's file: say which and why, in one line
            message = f"config file {path} failed to load: {type(err).__name__}: {err}"
            raise OccfaceError(message.splitlines()[0]) from err
        where = str(path)
    else:
        if name_or_path not in config_names():
            raise OccfaceError(
                f"no config named {name_or_path!r}; known: {', '.join(config_names())}"
            )
        module = importlib.import_module(f"{CONFIG_PACKAGE}.{name_or_path}")
        where = config_source(name_or_path)
    if not hasattr(module, "get_config"):
        raise OccfaceError(f"{where} defines no get_config()")
    try:
        return module.get_config(variant) if variant else module.get_config()
    except ValueError as err:
        raise OccfaceError(f"{where}: {err}") from err


def config_source(name_or_path: str) -> str:
    """How error messages name a config: ``configs/<name>.py`` for a packaged one, else the path."""
    return name_or_path if name_or_path.endswith(".py") else f"configs/{name_or_path}.py"


def flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """Every leaf setting's dotted key (``train.steps``, ...), in the config's order."""
    keys = []
    for name, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            keys += flat_keys(value, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def apply_overrides(
    config: ml_collections.ConfigDict, pairs: Sequence[str], source: str = "the config"
) -> ml_collections.ConfigDict:
    """Set each ``KEY=VALUE`` of ``pairs`` (dotted keys) in ``config``, in place, read and checked
    as the default value's type (module docstring); returns ``config``. ``source`` names the config
    file in error messages. Raises OccfaceError with one line naming the key and what it expects,
    or, for an unknown key, the file and the nearest known keys."""
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OccfaceError(f"--set expects KEY=VALUE, got {pair!r}")
        node, leaf = _parent_of(config, key, source)
        node[leaf] = parse_value(key, raw, node[leaf])
    return config


def _parent_of(
    config: ml_collections.ConfigDict, key: str, source: str
) -> tuple[ml_collections.ConfigDict, str]:
    """(the group holding ``key``'s last part, that part); OccfaceError for an unknown key."""
    node = config
    *groups, leaf = key.split(".")
    for name in groups:
        if name not in node or not isinstance(node[name], ml_collections.ConfigDict):
            raise _unknown_key(config, key, source)
        node = node[name]
    if leaf not in node:
        raise _unknown_key(config, key, source)
    if isinstance(node[leaf], ml_collections.ConfigDict):
        inner = ", ".join(flat_keys(node[leaf], f"{key}.")[:6])
        raise OccfaceError(f"config key {key!r} is a group of settings; set one of them: {inner}")
    return node, leaf


def _unknown_key(config: ml_collections.ConfigDict, key: str, source: str) -> OccfaceError:
    nearest = difflib.get_close_matches(key, flat_keys(config), n=3, cutoff=0.5)
    hint = f"; nearest: {', '.join(nearest)}" if nearest else ""
    return OccfaceError(f"unknown config key {key!r} (see {source}){hint}")


def parse_value(key: str, raw: str, default: Any) -> Any:
    """``raw`` (the text after ``=``) read as the type of ``default`` and range-checked for the
    setting ``key``; OccfaceError naming the key and what it expects otherwise."""
    raw = raw.strip()
    if isinstance(default, (tuple, list)):
        items = _split_items(raw)
        kinds = {type(v) for v in default}
        if len(kinds) > 1 or not default:  # mixed or empty default: nothing to check items against
            raise OccfaceError(f"config key {key!r} holds a mixed or empty sequence; edit the file")
        (kind,) = kinds
        numeric = kind in (int, float)
        if numeric and len(items) != len(default):
            raise OccfaceError(
                f"config key {key!r} expects {len(default)} comma-separated numbers, e.g. "
                f"{','.join(map(str, default))}; got {raw!r}"
            )
        if not items or any(not item for item in items):
            raise OccfaceError(f"config key {key!r} expects comma-separated items; got {raw!r}")
        values = [
            _parse_scalar(f"{key}[{i}]", item, default[0], key) for i, item in enumerate(items)
        ]
        return type(default)(values)
    return _parse_scalar(key, raw, default, key)


def _split_items(raw: str) -> list[str]:
    """``(a, b)``, ``[a,b]`` or ``a,b`` -> ['a', 'b'] (quotes around an item dropped)."""
    text = raw[1:-1] if raw[:1] + raw[-1:] in ("()", "[]") else raw
    items = [item.strip() for item in text.split(",")]
    if items and items[-1] == "" and len(items) > 1:  # a trailing comma: '(a,)'
        items = items[:-1]
    return [_unquote(item) for item in items]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _parse_scalar(label: str, raw: str, default: Any, key: str) -> Any:
    """One value like ``default`` (bool, int, float, str or None); ``key`` decides int ranges."""
    if isinstance(default, bool):
        if raw in ("true", "True"):
            return True
        if raw in ("false", "False"):
            return False
        raise OccfaceError(f"config key {label!r} expects a bool (true or false); got {raw!r}")
    if isinstance(default, int):
        if not re.fullmatch(r"[+-]?\d+", raw):
            raise OccfaceError(f"config key {label!r} expects an int; got {raw!r}")
        value, lowest = int(raw), _lowest_int(key)
        if value < lowest:
            what = "a positive int (>= 1)" if lowest == 1 else "a non-negative int (>= 0)"
            raise OccfaceError(f"config key {label!r} expects {what}; got {raw!r}")
        return value
    if isinstance(default, float):
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise OccfaceError(f"config key {label!r} expects a finite number; got {raw!r}")
        return value
    if isinstance(default, str):
        return _unquote(raw)
    if default is None:  # no type to go by: a Python literal, else the text
        import ast

        try:
            return ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
    raise OccfaceError(f"config key {label!r} holds a {type(default).__name__}; edit the file")


def _lowest_int(key: str) -> int:
    """The smallest value an integer setting ``key`` may take (see :data:`POSITIVE_INT_NAMES`)."""
    name = key.rsplit(".", 1)[-1]
    if name not in NON_NEGATIVE_SIZE_NAMES and re.fullmatch(POSITIVE_INT_NAMES, name):
        return 1
    return 0
