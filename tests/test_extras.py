"""The landmarks extra: a clear install hint when its packages are missing."""

from __future__ import annotations

import importlib

import pytest

from occface_jax import extras as extra
from occface_jax.errors import MissingExtraError


@pytest.mark.parametrize(
    ("call", "package"),
    [
        (extra.import_dlib, "dlib"),
        (lambda: extra.dlib_model_path("landmarks68"), "face_recognition_models"),
    ],
)
def test_missing_package_names_the_install_command(monkeypatch, call, package):
    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name == package:
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(MissingExtraError, match=r"pip install -e '\.\[landmarks\]'"):
        call()


def test_model_paths_exist_when_installed(dlib_models):
    for key in extra.MODEL_FILES:
        assert dlib_models(key).is_file()
    with pytest.raises(ValueError, match="unknown dlib model"):
        extra.dlib_model_path("nope")
