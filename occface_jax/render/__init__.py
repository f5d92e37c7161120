"""Differentiable rendering in pure JAX: cameras, rasterize, interpolate, SH shading, antialias."""

from occface_jax.render.antialias import antialias, edge_adjacency
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
from occface_jax.render.render import Rendering, render
from occface_jax.render.sh import irradiance, sh_basis, shade

__all__ = [
    "PerspectiveCamera",
    "Raster",
    "Rendering",
    "antialias",
    "deng_camera",
    "edge_adjacency",
    "euler_to_rotation",
    "interpolate",
    "irradiance",
    "perspective_clip",
    "project_perspective",
    "rasterize",
    "render",
    "rigid_transform",
    "scaled_ortho_pixels",
    "sh_basis",
    "shade",
]
