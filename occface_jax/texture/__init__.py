"""The reconstructed texture: per-vertex colours and the UV atlas baked from the photo (``atlas``)."""
