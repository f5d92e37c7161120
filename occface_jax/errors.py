"""User-facing errors: each carries one line saying what is wrong and what to do about it."""

from __future__ import annotations


class OccfaceError(Exception):
    """Base class of every error meant for a user; ``str(err)`` is a complete one-line message."""


class ModelFileError(OccfaceError):
    """A morphable-model file is missing, corrupt or not of the expected layout."""


class ModelNotFoundError(OccfaceError):
    """No morphable model could be found along the resolution order."""


class DownloadError(OccfaceError):
    """A download failed (offline, HTTP error or checksum mismatch)."""


class MissingExtraError(OccfaceError):
    """An optional dependency group is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install -e '.[{extra}]'"
        )


class WeightsFileError(OccfaceError):
    """A weight file (dlib .dat or its converted npz cache) is missing, corrupt or of a wrong version."""
