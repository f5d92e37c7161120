"""Lazy access to the ``landmarks`` extra: dlib (``dlib-bin``) and ``face-recognition-models``.

Both are optional; every function here raises ``MissingExtraError`` naming the install command when a
package is missing, so importing ``occface_jax.faces`` never needs them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from occface_jax.errors import MissingExtraError

EXTRA = "landmarks"

# Names of the model files shipped by face-recognition-models (all by Davis King, dlib).
MODEL_FILES = {
    "face_recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}


def import_dlib() -> ModuleType:
    """The ``dlib`` module, or MissingExtraError saying how to install it."""
    try:
        return importlib.import_module("dlib")
    except ImportError as err:
        raise MissingExtraError("dlib (package dlib-bin)", EXTRA) from err


def dlib_model_path(which: str) -> Path:
    """Path of one of dlib's model files from face-recognition-models (keys of ``MODEL_FILES``)."""
    if which not in MODEL_FILES:
        raise ValueError(f"unknown dlib model {which!r}; choose one of {sorted(MODEL_FILES)}")
    try:
        package = importlib.import_module("face_recognition_models")
    except ImportError as err:
        raise MissingExtraError("face-recognition-models", EXTRA) from err
    return Path(package.__file__).resolve().parent / "models" / MODEL_FILES[which]
