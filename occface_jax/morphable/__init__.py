"""Morphable face models: file format, loaders, coefficient layout and geometry (millimetres)."""

from occface_jax.morphable import geometry
from occface_jax.morphable.layout import CoeffLayout
from occface_jax.morphable.model import MorphableModel
from occface_jax.morphable.registry import find_model, load_model, load_model_file

__all__ = [
    "CoeffLayout",
    "MorphableModel",
    "find_model",
    "geometry",
    "load_model",
    "load_model_file",
]
