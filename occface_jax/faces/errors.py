"""User-facing errors of the faces package (all derive from ``occface_jax.errors.OccfaceError``)."""

from __future__ import annotations

from occface_jax.errors import OccfaceError


class NoFaceFoundError(OccfaceError):
    """The detector found no face in an image."""


class LandmarkFileError(OccfaceError):
    """A landmark file (.pts, .ljson, dlib XML) is missing, corrupt or not of the expected layout."""


class WeightsFileError(OccfaceError):
    """A weight file (dlib .dat or its converted npz cache) is missing, corrupt or of a wrong version."""
