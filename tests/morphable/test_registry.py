"""Resolution order of the default model and dispatch on file formats."""

from __future__ import annotations

import pytest

from occface_jax.errors import ModelFileError, ModelNotFoundError
from occface_jax.morphable import find_model, load_model
from occface_jax.morphable.io import save_model


def test_resolution_order(monkeypatch, tmp_path, toy_model, default_model_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCCFACE_CACHE", str(cache))
    monkeypatch.setenv("OCCFACE_SHARED", str(tmp_path / "no_shared"))
    monkeypatch.delenv("OCCFACE_MODEL", raising=False)
    with pytest.raises(ModelNotFoundError, match="occface fetch-model"):
        find_model()
    cached = save_model(cache / "models" / "ict_face_default.npz", toy_model)
    assert find_model() == cached
    monkeypatch.setenv("OCCFACE_SHARED", str(default_model_path.parent.parent))
    assert find_model() == default_model_path
    env_model = save_model(tmp_path / "env.npz", toy_model)
    monkeypatch.setenv("OCCFACE_MODEL", str(env_model))
    assert find_model() == env_model
    explicit = save_model(tmp_path / "explicit.npz", toy_model)
    assert find_model(explicit) == explicit
    with pytest.raises(ModelFileError, match="does not exist"):
        find_model(tmp_path / "absent.npz")


def test_load_model_dispatches_on_format(shared_dir):
    ict_folder = load_model(shared_dir / "models" / "ict_sample")
    assert ict_folder.n_id == 2 and ict_folder.n_vertices == 17202
    with pytest.raises(ModelFileError, match="holds no known model"):
        load_model(shared_dir / "faces")
