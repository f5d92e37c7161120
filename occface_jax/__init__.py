"""occface_jax: convincing 3D face reconstruction from a single, possibly occluded, colour photo."""

__version__ = "0.1.0"
