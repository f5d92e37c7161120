"""User-facing errors of the faces package (all derive from ``occface_jax.errors.OccfaceError``)."""

from __future__ import annotations

from occface_jax.errors import OccfaceError, WeightsFileError  # noqa: F401 (re-exported)


class NoFaceFoundError(OccfaceError):
    """The detector found no face in an image."""


class LandmarkFileError(OccfaceError):
    """A landmark file (.pts, .ljson, dlib XML) is missing, corrupt or not of the expected layout."""
