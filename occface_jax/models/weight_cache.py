"""The npz caches of converted pretrained weights (dlib's face-ID network, MediaPipe's networks):
arrays plus a ``format_version``, read with one clear line when corrupt or of another version."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from occface_jax.errors import WeightsFileError

CACHE_FORMAT = 1


def read_weight_cache(npz_path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of a converted npz cache; WeightsFileError (delete it to reconvert) when it is
    corrupt or of another format version."""
    npz_path = Path(npz_path)
    if not npz_path.is_file():
        raise WeightsFileError(f"{npz_path}: no such weight file")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise WeightsFileError(
            f"{npz_path}: corrupt weight cache ({type(err).__name__}); delete it to reconvert"
        ) from err
    version = int(arrays.get("format_version", -1))
    if version != CACHE_FORMAT:
        raise WeightsFileError(
            f"{npz_path}: weight cache format {version}, expected {CACHE_FORMAT}; delete it to reconvert"
        )
    return arrays


def assign_checked(variable, array: np.ndarray, source: str, name: str) -> None:
    """Set an nnx variable to ``array`` (float32) after checking its shape; WeightsFileError naming
    ``source`` and ``name`` (delete it to reconvert) when they differ."""
    value = np.asarray(array, np.float32)
    expected = tuple(variable.get_value().shape)
    if value.shape != expected:
        raise WeightsFileError(
            f"{source}: array {name} has shape {value.shape}, expected {expected}; "
            "delete it to reconvert"
        )
    variable.set_value(jnp.asarray(value))
