"""Per-vertex output texture of a fit: the photo's colour where the fitted face saw it, the fitted
albedo under the fitted light elsewhere, blended over a few one-rings.

Conventions: colours (N, 3) float RGB in [0, 1]; images (S, S, 3) over the aligned crop; pixel
positions (x right, y down, pixel centres at +0.5); vertices in mm, model frame.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from occface_jax.morphable import MorphableModel
from occface_jax.morphable.rendering import shaded_vertices
from occface_jax.render import camera as cam

#: One-ring shrinks of the photo weight (the per-vertex texture and the atlas blend alike).
PHOTO_RINGS = 3


def photo_weight(
    visible: jax.Array, triangles: jax.Array, vertex_triangles: jax.Array, rings: int = PHOTO_RINGS
) -> jax.Array:
    """Per-vertex photo weight (N,) in [0, 1]: ``visible`` (N,) shrunk smoothly over ``rings``
    one-rings (each ring: the minimum of itself and the mean of its triangles' corner means).
    ``vertex_triangles`` (N, K) lists each vertex's triangles, padded with F = len(triangles)."""
    weight = jnp.asarray(visible, jnp.float32)
    n_tri = triangles.shape[0]
    count = jnp.maximum((vertex_triangles < n_tri).sum(1), 1)
    for _ in range(rings):  # a fixed, small number of rings (not a loop over data)
        tri_mean = jnp.concatenate([weight[triangles].mean(axis=1), jnp.zeros(1)])
        weight = jnp.minimum(weight, tri_mean[vertex_triangles].sum(1) / count)
    return weight


def vertex_texture(
    model: MorphableModel,
    coeffs: dict[str, jax.Array],
    camera: cam.PerspectiveCamera,
    image: jax.Array,
    occlusion: jax.Array,
    depth: jax.Array,
    coverage: jax.Array,
    ambient: float,
    from_photo: bool = True,
    depth_tolerance_mm: float = 3.0,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-vertex output colours (N, 3) in [0, 1], visibility (N,) bool and vertices (N, 3) mm.

    ``image`` (S, S, 3) is the crop seen by ``camera``; ``occlusion`` (1 = occluder), ``depth``
    (view depth, mm) and ``coverage`` are maps of any resolution over the same crop (e.g. the
    fitting render). A face-region vertex on skin, or an eyeball vertex (``eye_region``: the iris
    and sclera seen between the lids), takes the photo's colour (bilinear) when it faces the
    camera, passes the depth test (``depth_tolerance_mm``) and is not occluded; every other vertex
    takes the fitted albedo under the fitted light (``ambient`` added to the first SH
    coefficient). The two are blended by :func:`photo_weight` to hide the seam."""
    m = model
    vertices, _, normals_cam, shaded = shaded_vertices(m, coeffs, ambient)
    if not from_photo:
        return jnp.clip(shaded, 0, 1), jnp.zeros(vertices.shape[0], bool), vertices
    world = cam.rigid_transform(vertices, coeffs["angles"], coeffs["translation"])
    pixels = cam.project_perspective(world, camera)
    depth_mm = (camera.distance - world[:, 2]) * cam.MM_PER_DM
    h, w = image.shape[:2]
    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < w) & (pixels[:, 1] >= 0) & (pixels[:, 1] < h)
    sample = jax.scipy.ndimage.map_coordinates

    def at(grid: jax.Array, order: int) -> jax.Array:
        scale = grid.shape[0] / h
        return sample(grid, [pixels[:, 1] * scale - 0.5, pixels[:, 0] * scale - 0.5], order=order)

    surface = jnp.where(coverage > 0.99, depth, jnp.inf)
    occluded = at(occlusion, 0) > 0.5
    eye_to_vertex = world - jnp.array([0.0, 0.0, camera.distance])
    facing = jnp.sum(normals_cam * -eye_to_vertex, axis=-1) > 0.2 * jnp.linalg.norm(
        eye_to_vertex, axis=-1
    )
    visible = inside & facing & ~occluded & (depth_mm <= at(surface, 0) + depth_tolerance_mm)
    visible = visible & (((m.skin_weight > 0.5) & m.face_region) | m.eye_region)
    photo = jnp.stack([at(image[..., c], 1) for c in range(3)], axis=-1)
    weight = photo_weight(visible, m.triangles, m.vertex_triangles)
    colors = weight[:, None] * photo + (1 - weight[:, None]) * shaded
    return jnp.clip(colors, 0, 1), visible, vertices
