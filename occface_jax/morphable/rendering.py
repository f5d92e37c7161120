"""``render(model, coeffs, camera, image_size)``: a morphable model's coefficients to an image, mask,
depth and projected landmarks, through the renderer's ops (rasterize -> interpolate -> SH shading ->
antialias) and the jaw outline. The face composite lives here, above ``render/`` (pure ops that know
nothing of morphable models)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.morphable import geometry
from occface_jax.morphable.contour import JawContour, landmark_pixels
from occface_jax.morphable.correspondence import SurfacePoints
from occface_jax.morphable.model import MorphableModel
from occface_jax.render import camera as cam
from occface_jax.render.antialias import antialias, mesh_adjacency
from occface_jax.render.interpolate import interpolate
from occface_jax.render.raster import rasterize
from occface_jax.render.sh import DENG_AMBIENT, shade


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Rendering:
    """Output of :func:`render` for images (..., H, W).

    image: (..., H, W, 3) shaded colour in [0, 1]-ish (not clipped), antialiased, 0 on background.
    mask: (..., H, W) antialiased coverage in [0, 1] (differentiable at the silhouette).
    depth: (..., H, W) view depth of the surface, mm from the eye plane (perspective) or from the
      plane ``depth_extent`` in front of the origin (scaled orthographic); 0 on background.
    landmarks: (..., 68, 2) projected landmarks in pixels (x right, y down); with ``jaw``, 0-16 on
      the outline.
    triangle_id: (..., H, W) int32 front-most triangle, -1 on background.
    """

    image: jax.Array
    mask: jax.Array
    depth: jax.Array
    landmarks: jax.Array
    triangle_id: jax.Array


def project(
    model: MorphableModel,
    vertices_mm: jax.Array,
    coeffs: dict[str, jax.Array],
    camera: cam.PerspectiveCamera,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Clip positions (..., N, 4), view depth (..., N) in mm and pixel positions (..., N, 2) of
    model-frame vertices under the pose in ``coeffs`` (scaled orthographic when it has ``scale``)."""
    if "scale" in coeffs:
        pix = cam.scaled_ortho_pixels(
            vertices_mm, coeffs["angles"], coeffs["scale"], coeffs["translation"], camera.image_size
        )
        extent = 500.0
        return cam.ortho_clip(pix, camera.image_size, extent), extent - pix[..., 2], pix[..., :2]
    world = cam.rigid_transform(vertices_mm, coeffs["angles"], coeffs["translation"])
    clip = cam.perspective_clip(world, camera)
    return clip, clip[..., 3] * cam.MM_PER_DM, cam.project_perspective(world, camera)


class ShadedVertices(NamedTuple):
    """Per-vertex shading of a morphable model under coefficients (:func:`shaded_vertices`).

    vertices: (..., N, 3) mm, model frame. rotation: (..., 3, 3) the pose's (model to camera
    frame). normals: (..., N, 3) unit vertex normals, camera frame. colour: (..., N, 3) the albedo
    under the SH light (Deng et al.'s shading), not clipped.
    """

    vertices: jax.Array
    rotation: jax.Array
    normals: jax.Array
    colour: jax.Array


def shaded_vertices(
    model: MorphableModel, coeffs: dict[str, jax.Array], ambient: float = DENG_AMBIENT
) -> ShadedVertices:
    """The shape, pose rotation, camera-frame normals and SH-shaded colours of ``coeffs``
    (``ambient`` added to the first SH coefficient of each channel)."""
    vertices = geometry.shape(model, coeffs["id"], coeffs["exp"])
    albedo = geometry.albedo(model, coeffs["tex"])
    triangles = jnp.asarray(model.triangles, jnp.int32)
    normals = geometry.vertex_normals(vertices, triangles, jnp.asarray(model.vertex_triangles))
    rotation = cam.euler_to_rotation(coeffs["angles"])
    normals_cam = jnp.einsum("...ij,...nj->...ni", rotation, normals)
    colour = shade(albedo, normals_cam, jnp.asarray(coeffs["light"]), ambient)
    return ShadedVertices(vertices, rotation, normals_cam, colour)


def project_landmarks(
    model: MorphableModel,
    coeffs: dict[str, jax.Array],
    camera: cam.PerspectiveCamera,
    jaw: JawContour | None = None,
) -> jax.Array:
    """(..., 68, 2) pixel positions of the model landmarks as :func:`render` gives them,
    computing only the 68 landmark vertices (and, with ``jaw``, the jaw's candidate lines): cheap
    enough for a landmark-only fit."""
    ids = jnp.asarray(model.landmarks68)
    sub_jaw = None
    if jaw is not None:  # the candidate lines follow the 68 landmarks in the subset
        lines = jnp.asarray(jaw.candidates)  # may be traced: only its shape is used below
        ids = jnp.concatenate([ids, lines.reshape(-1)])
        sub_lines = 68 + np.arange(lines.size, dtype=np.int32).reshape(lines.shape)
        sub_jaw = JawContour(sub_lines, jaw.outward)
    subset = vertex_subset(model, ids)
    vertices = geometry.shape(subset, coeffs["id"], coeffs["exp"])
    pixels = project(subset, vertices, coeffs, camera)[2]
    rotation = cam.euler_to_rotation(coeffs["angles"])
    return landmark_pixels(pixels, rotation, np.arange(68, dtype=np.int32), sub_jaw)


def vertex_subset(model: MorphableModel, ids: jax.Array) -> MorphableModel:
    """The shape part of ``model`` (mean shape, identity and expression bases) at vertices
    ``ids`` (K,), repeats allowed: what a few points' geometry needs, not the whole mesh."""
    ids = jnp.asarray(ids)
    rows = (3 * ids[:, None] + jnp.arange(3)).reshape(-1)
    return dataclasses.replace(
        model,
        mean_shape=model.mean_shape[ids],
        id_basis=model.id_basis[rows],
        exp_basis=model.exp_basis[rows],
    )


def project_dense(
    model: MorphableModel,
    coeffs: dict[str, jax.Array],
    camera: cam.PerspectiveCamera,
    points: SurfacePoints,
) -> tuple[jax.Array, jax.Array]:
    """Pixels (..., P, 2) of surface points (e.g. MediaPipe's 468 correspondences) under
    ``coeffs``, and how much each faces the camera (..., P): the z component of its triangle's
    outward unit normal in the camera frame (1 = towards the camera, <= 0 = turned away)."""
    p = points.vertices.shape[0]
    subset = vertex_subset(model, jnp.reshape(points.vertices, -1))
    corners = geometry.shape(subset, coeffs["id"], coeffs["exp"])
    corners = corners.reshape(corners.shape[:-2] + (p, 3, 3))
    surface = jnp.einsum("pk,...pkd->...pd", points.barycentric, corners)
    pixels = project(subset, surface, coeffs, camera)[2]
    normal = jnp.cross(
        corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :]
    )
    normal = normal * points.outward[:, None]
    rotation = cam.euler_to_rotation(coeffs["angles"])
    normal_cam = jnp.einsum("...ij,...pj->...pi", rotation, normal)
    facing = normal_cam[..., 2] / jnp.maximum(jnp.linalg.norm(normal_cam, axis=-1), 1e-9)
    return pixels, facing


def render(
    model: MorphableModel,
    coeffs: dict[str, jax.Array],
    camera: cam.PerspectiveCamera | None = None,
    image_size: int | tuple[int, int] = cam.DENG_IMAGE_SIZE,
    *,
    ambient: float = DENG_AMBIENT,
    background: jax.Array | None = None,
    cull: str = "none",
    adjacency: jax.Array | None = None,
    jaw: JawContour | None = None,
) -> Rendering:
    """Render a morphable model with Deng et al.'s per-vertex SH shading.

    Args:
      model: a ``MorphableModel`` (concrete triangles: adjacency is computed once per topology).
      coeffs: the dict of ``CoeffLayout.split`` (keys id, exp, tex, angles, light, translation and,
        for the scaled orthographic pose, scale), with any leading batch axes.
      camera: the perspective camera (default ``deng_camera(image_size)``); its ``image_size`` wins.
      image_size: pixels, int or (height, width), used when ``camera`` is None.
      ambient: added to the first SH coefficient of each channel (Deng et al.: 0.8).
      background: optional (..., H, W, 3) image behind the face (blended by the antialiased mask).
      cull: passed to ``rasterize``.
      adjacency: ``mesh_adjacency(model.triangles)`` computed beforehand, so that the model's
        topology may be traced (passed into jit as an argument rather than folded as constants).
      jaw: the model's ``contour.for_model(model)``: the jaw landmarks (0-16) then follow the
        face's outline under the pose (as a detector marks them) instead of fixed vertices.
    """
    if camera is None:
        camera = cam.deng_camera(image_size)
    size = camera.image_size
    vertices, rotation, _, colour = shaded_vertices(model, coeffs, ambient)
    triangles = jnp.asarray(model.triangles, jnp.int32)
    clip, depth_mm, pixels = project(model, vertices, coeffs, camera)
    raster = rasterize(clip, triangles, size, cull=cull)
    attrs = jnp.concatenate([colour, depth_mm[..., None]], axis=-1)
    interp = interpolate(attrs, raster, triangles)
    mask = raster.mask[..., None]
    layers = [interp[..., :3], mask]
    if background is not None:
        layers[0] = layers[0] + (1.0 - mask) * background
    stacked = antialias(
        jnp.concatenate(layers, axis=-1),
        raster,
        clip,
        triangles,
        mesh_adjacency(model.triangles) if adjacency is None else adjacency,
    )
    landmarks = landmark_pixels(pixels, rotation, model.landmarks68, jaw)
    return Rendering(
        image=stacked[..., :3],
        mask=stacked[..., 3],
        depth=interp[..., 3],
        landmarks=landmarks,
        triangle_id=raster.triangle_id,
    )
