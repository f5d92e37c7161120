"""Per-vertex error heat maps rendered on the mesh (the paper's Figure 4).

A reconstruction's error at each vertex (mm) is mapped to a colour (blue 0 mm -> red at ``max_mm``
and above, OpenCV's JET map; vertices without an error, NaN, are grey) and the mesh is drawn frontal
and three-quarter by ``io.report.mesh_views`` (the project renderer, head-on light), with a colour
bar labelled in mm to the right. Pictures are float32 (H, W, 3) RGB in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw

from occface_jax.io import images as imageio
from occface_jax.io.report import VIEW_YAWS, mesh_views
from occface_jax.morphable.model import build_vertex_triangles

NO_ERROR_GREY = 0.75
BAR_WIDTH = 64
HEATMAPS = "heatmaps"  # a protocol's pictures: OUT/heatmaps/
HEATMAP_MAX_MM = 5.0  # the protocols' colour-scale top, one for every picture so that they compare


def _jet_table() -> np.ndarray:
    """(256, 3) RGB in [0, 1]: OpenCV's JET colour map, blue -> cyan -> yellow -> red."""
    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0]
    return bgr[:, ::-1].astype(np.float32) / 255.0


def error_colours(errors_mm: np.ndarray, max_mm: float) -> np.ndarray:
    """(N, 3) RGB in [0, 1] of per-vertex errors (N,) in mm: 0 -> blue, >= ``max_mm`` -> red;
    NaN (no error known) -> grey."""
    errors = np.asarray(errors_mm, np.float64)
    if max_mm <= 0:
        raise ValueError(f"max_mm must be > 0, got {max_mm}")
    level = np.clip(np.nan_to_num(errors, nan=0.0) / max_mm, 0.0, 1.0)
    colours = _jet_table()[np.round(level * 255).astype(int)]
    colours[~np.isfinite(errors)] = NO_ERROR_GREY
    return colours


def default_max_mm(errors_mm: np.ndarray) -> float:
    """The colour scale's top: the 95th percentile of the finite errors, rounded up to 0.5 mm
    (at least 0.5)."""
    finite = np.asarray(errors_mm, np.float64)
    finite = finite[np.isfinite(finite)]
    top = float(np.percentile(finite, 95)) if finite.size else 1.0
    return max(0.5, float(np.ceil(top * 2.0) / 2.0))


def colour_bar(height: int, max_mm: float, width: int = BAR_WIDTH) -> np.ndarray:
    """(height, width, 3): the colour scale, 0 mm at the bottom, ``max_mm`` at the top, with the
    values at 0, 1/2 and the top written beside it."""
    bar = np.ones((height, width, 3), np.float32)
    margin = max(8, height // 16)
    rows = np.arange(height - 2 * margin)
    level = 1.0 - rows / max(len(rows) - 1, 1)
    bar[margin : height - margin, 4:18] = _jet_table()[np.round(level * 255).astype(int)][:, None]
    labels = []
    for fraction in (0.0, 0.5, 1.0):
        y = int(round(margin + (1.0 - fraction) * (len(rows) - 1)))
        text = f"{fraction * max_mm:.1f}" + (" mm" if fraction == 1.0 else "")
        labels.append(((20, min(max(y - 5, 0), height - 12)), text))
    return _write(bar, labels)


def _write(picture: np.ndarray, labels: Sequence[tuple[tuple[int, int], str]]) -> np.ndarray:
    """``picture`` (float RGB in [0, 1]) with each text written in black at its (x, y) top-left."""
    image = Image.fromarray(np.round(np.clip(picture, 0.0, 1.0) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for xy, text in labels:
        draw.text(xy, text, fill=(0, 0, 0))
    return np.asarray(image, np.float32) / 255.0


def error_heatmap(
    vertices_mm: np.ndarray,
    triangles: np.ndarray,
    errors_mm: np.ndarray,
    max_mm: float | None = None,
    size: int = 256,
    yaws: Sequence[float] = VIEW_YAWS,
    title: str = "",
) -> np.ndarray:
    """The mesh (``vertices_mm`` (N, 3) model frame: x left, y up, z to the camera; ``triangles``
    (F, 3)) coloured by ``errors_mm`` (N,) and drawn at each yaw (radians), then the colour bar:
    (size, size * len(yaws) + BAR_WIDTH, 3). Only vertices the triangles use are drawn (and
    framed); ``max_mm`` None: :func:`default_max_mm`."""
    vertices = np.asarray(vertices_mm, np.float32)
    triangles = np.asarray(triangles, np.int32)
    errors = np.asarray(errors_mm, np.float64)
    if errors.shape != (len(vertices),):
        raise ValueError(f"errors_mm {errors.shape} does not match vertices {vertices.shape}")
    used = np.unique(triangles)
    compact = np.full(len(vertices), -1, np.int64)
    compact[used] = np.arange(len(used))
    tris = compact[triangles].astype(np.int32)
    top = default_max_mm(errors[used]) if max_mm is None else float(max_mm)
    views = mesh_views(
        jnp.asarray(vertices[used]),
        jnp.asarray(error_colours(errors[used], top)),
        jnp.asarray(tris),
        jnp.asarray(build_vertex_triangles(tris, len(used))),
        jnp.asarray(np.asarray(yaws, np.float32)),
        size=size,
    )
    picture = np.concatenate([*np.clip(np.asarray(views), 0.0, 1.0), colour_bar(size, top)], 1)
    if title:
        picture = _write(picture, [((6, 4), title)])
    return picture.astype(np.float32)


def save_error_heatmap(path: str | Path, *args, **kwargs) -> Path:
    """:func:`error_heatmap` written as a PNG to ``path`` (parent folders made); returns the path."""
    return imageio.save_image(path, error_heatmap(*args, **kwargs))


def on_vertices(n_vertices: int, indices: np.ndarray, errors_mm: np.ndarray) -> np.ndarray:
    """(n_vertices,) errors: ``errors_mm`` at ``indices``, NaN (grey) at every other vertex."""
    out = np.full(n_vertices, np.nan)
    out[np.asarray(indices)] = np.asarray(errors_mm, np.float64)
    return out
