"""Pictures of a reconstruction: mesh views rendered with the project's renderer, and the
side-by-side report panel (photo, occlusion mask, the completed contours when the de-occlusion
GANs ran, de-occluded photo, overlay, mesh views)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.io import images as imageio
from occface_jax.morphable import MorphableModel, geometry
from occface_jax.render import camera as cam
from occface_jax.render.interpolate import interpolate
from occface_jax.render.raster import rasterize

VIEW_YAWS = (0.0, 0.7)  # radians: frontal and three-quarter


@partial(jax.jit, static_argnames=("size",))
def mesh_views(
    vertices_mm: jax.Array,
    colors: jax.Array,
    triangles: jax.Array,
    vertex_triangles: jax.Array,
    yaws: jax.Array,
    size: int = 256,
) -> jax.Array:
    """(V, size, size, 3) views of a coloured mesh turned by ``yaws`` (radians) about its centre,
    lit by a head-on light (colour x (0.35 + 0.65 cos)), white background."""
    centred = vertices_mm - (vertices_mm.max(axis=0) + vertices_mm.min(axis=0)) / 2
    extent = jnp.max(jnp.abs(centred[:, :2]))
    camera = cam.deng_camera(size)
    scale_dm = 1.0 / extent  # fit the mesh in the view: half-size 1 dm fills it at 10 dm
    angles = jnp.stack([jnp.zeros_like(yaws), yaws, jnp.zeros_like(yaws)], axis=-1)
    world = cam.rigid_transform(centred[None] * scale_dm * cam.MM_PER_DM, angles)
    clip = cam.perspective_clip(world, camera)
    raster = rasterize(clip, triangles, (size, size))
    normals = geometry.vertex_normals(world, triangles, vertex_triangles)
    lambert = 0.35 + 0.65 * jnp.clip(normals[..., 2], 0.0, 1.0)
    shaded = jnp.broadcast_to(colors, world.shape) * lambert[..., None]
    image = interpolate(shaded, raster, triangles)
    return image + (1.0 - raster.mask[..., None])


def _label(image: np.ndarray, text: str) -> np.ndarray:
    out = imageio.to_uint8(image)
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (255, 255, 255), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def panel(tiles: list[tuple[str, np.ndarray]], height: int = 256) -> np.ndarray:
    """Labelled images side by side, all scaled to ``height``; uint8 (height, W, 3)."""
    row = [_label(_fit_height(np.asarray(img, np.float32), height), name) for name, img in tiles]
    gap = np.full((height, 4, 3), 255, np.uint8)
    parts = []
    for tile in row:
        parts += [tile, gap]
    return np.concatenate(parts[:-1], axis=1)


def save_report(
    path: Path, rec: Any, deoccluded: np.ndarray, overlay: np.ndarray, model: MorphableModel
) -> Path:
    """The report panel of one reconstruction (see ``pipeline.Reconstruction``)."""
    fit = rec.fit
    views = np.asarray(
        mesh_views(
            jnp.asarray(fit.vertices),
            jnp.asarray(fit.vertex_colors),
            jnp.asarray(model.triangles),
            jnp.asarray(model.vertex_triangles),
            jnp.asarray(VIEW_YAWS),
        )
    )
    # Crop every photo-frame picture to the face: the aligned crop's footprint on the photo.
    corners = rec.aligned.to_original(np.array([[0, 0], [224, 224]], np.float64))
    x0, y0 = np.floor(corners[0]).astype(int)
    x1, y1 = np.ceil(corners[1]).astype(int)
    h, w = rec.photo.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)

    def crop(img: np.ndarray) -> np.ndarray:
        return img[y0:y1, x0:x1]

    mask_tint = (
        rec.photo * (1 - 0.6 * rec.occlusion_original[..., None])
        + np.array([1.0, 0.1, 0.1]) * 0.6 * rec.occlusion_original[..., None]
    )
    contour = getattr(rec, "contour_original", None)  # the de-occlusion GANs' C_fina
    contour_tiles = (
        [] if contour is None else [("contours", crop(np.repeat(contour[..., None], 3, -1)))]
    )
    tiles = [
        ("photo", crop(rec.photo)),
        ("occlusion (red)", crop(mask_tint)),
        *contour_tiles,
        ("de-occluded", crop(deoccluded)),
        ("overlay", crop(overlay)),
        ("mesh", views[0]),
        ("mesh, turned", views[1]),
    ]
    return imageio.save_image(path, panel(tiles))
