"""Differentiable rendering in pure JAX: cameras, rasterize, interpolate, SH shading, antialias.

The ground floor: imports nothing of ``morphable/`` (the face composite ``render(model, coeffs)`` is
``occface_jax.morphable.rendering``)."""

from occface_jax.render.antialias import antialias, edge_adjacency, mesh_adjacency
from occface_jax.render.camera import (
    PerspectiveCamera,
    deng_camera,
    euler_to_rotation,
    perspective_clip,
    project_perspective,
    rigid_transform,
    scaled_ortho_pixels,
)
from occface_jax.render.interpolate import interpolate
from occface_jax.render.raster import Raster, rasterize
from occface_jax.render.sh import irradiance, sh_basis, shade

__all__ = [
    "PerspectiveCamera",
    "Raster",
    "antialias",
    "deng_camera",
    "edge_adjacency",
    "euler_to_rotation",
    "interpolate",
    "mesh_adjacency",
    "irradiance",
    "perspective_clip",
    "project_perspective",
    "rasterize",
    "rigid_transform",
    "scaled_ortho_pixels",
    "sh_basis",
    "shade",
]
