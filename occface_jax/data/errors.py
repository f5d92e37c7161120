"""User-facing errors of the data package (all derive from ``occface_jax.errors.OccfaceError``)."""

from __future__ import annotations

from occface_jax.errors import OccfaceError


class DatasetLayoutError(OccfaceError):
    """A dataset folder is missing or does not have the published layout the loader expects."""


class RecordError(OccfaceError):
    """One record (image, mask, landmark or scan file) is missing or unreadable; loaders skip these."""
