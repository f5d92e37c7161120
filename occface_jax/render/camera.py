"""Cameras: Euler angles to rotations, Deng et al.'s perspective camera and the paper's scaled
orthographic projection, all producing OpenGL-style clip-space positions for the rasterizer.

Conventions (one place, used everywhere):
- Model vertices are in millimetres; ``MM_PER_DM = 100`` converts them to the decimetres of Deng et al.'s
  camera at this boundary only. Axes: x = subject's left (image right), y = up, z = towards the camera.
- Rotation (Deng et al.'s ``compute_rotation``): angles are (pitch, yaw, roll) in radians about x, y, z;
  ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)`` acting on column vectors, ``x_cam = R @ x + t``.
- Perspective camera: the eye sits at z = ``distance`` (10 dm) on the +z axis looking down -z; focal
  ``1015 * S / 224`` pixels and principal point at the image centre (112 for S = 224).
- Image coordinates are pixels, x right, y down, top-left origin; pixel (row i, col j) has its centre at
  (j + 0.5, i + 0.5). Clip space is OpenGL's: ``ndc = clip[:3] / clip[3]``, x_ndc right, y_ndc up, and
  pixel x = (x_ndc + 1) W / 2, y = (1 - y_ndc) H / 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

MM_PER_DM = 100.0
DENG_FOCAL = 1015.0
DENG_IMAGE_SIZE = 224
DENG_DISTANCE = 10.0
DENG_ORTHO_SCALE = DENG_FOCAL / DENG_DISTANCE / MM_PER_DM  # px per mm at 224 px


def euler_to_rotation(angles: jax.Array) -> jax.Array:
    """Rotation matrices (..., 3, 3) from (..., 3) angles (pitch, yaw, roll) in radians.

    ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``, applied to column vectors (Deng et al.'s convention).
    """
    angles = jnp.asarray(angles)
    cx, cy, cz = (jnp.cos(angles[..., i]) for i in range(3))
    sx, sy, sz = (jnp.sin(angles[..., i]) for i in range(3))
    one, zero = jnp.ones_like(cx), jnp.zeros_like(cx)

    def mat(rows):
        return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)

    rot_x = mat([[one, zero, zero], [zero, cx, -sx], [zero, sx, cx]])
    rot_y = mat([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
    rot_z = mat([[cz, -sz, zero], [sz, cz, zero], [zero, zero, one]])
    return rot_z @ rot_y @ rot_x


def rigid_transform(
    vertices_mm: jax.Array, angles: jax.Array, translation_dm: jax.Array | None = None
) -> jax.Array:
    """World-space vertices (..., N, 3) in decimetres: ``R(angles) @ (v / 100) + t``.

    ``vertices_mm`` (..., N, 3) in mm, ``angles`` (..., 3) radians, ``translation_dm`` (..., 3) dm.
    """
    rot = euler_to_rotation(angles)
    out = jnp.einsum("...ij,...nj->...ni", rot, vertices_mm / MM_PER_DM)
    if translation_dm is not None:
        out = out + jnp.asarray(translation_dm)[..., None, :]
    return out


@dataclass(frozen=True)
class PerspectiveCamera:
    """Deng et al.'s pinhole camera for a ``(height, width)`` image.

    ``focal`` and ``center`` (x, y) are in pixels (image y down); ``distance`` is the eye's z in dm;
    ``near``/``far`` are clip distances from the eye in dm.
    """

    focal: jax.Array
    center: jax.Array
    distance: float = DENG_DISTANCE
    near: float = 5.0
    far: float = 15.0
    image_size: tuple[int, int] = (DENG_IMAGE_SIZE, DENG_IMAGE_SIZE)

    def __post_init__(self) -> None:  # static fields must be hashable Python values
        object.__setattr__(self, "image_size", tuple(int(s) for s in self.image_size))


# distance/near/far/image_size are static: mark them as metadata.
jax.tree_util.register_dataclass(
    PerspectiveCamera,
    data_fields=["focal", "center"],
    meta_fields=["distance", "near", "far", "image_size"],
)


def deng_camera(image_size: int | tuple[int, int] = DENG_IMAGE_SIZE) -> PerspectiveCamera:
    """Deng et al.'s camera (focal 1015, centre 112, eye at z = 10 dm for 224 px), scaled to ``image_size``.

    For a non-square ``(height, width)`` the focal scales with the width and the centre is the image centre.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    focal = DENG_FOCAL * width / DENG_IMAGE_SIZE
    return PerspectiveCamera(
        focal=jnp.float32(focal),
        center=jnp.array([width / 2.0, height / 2.0], jnp.float32),
        image_size=(height, width),
    )


def perspective_clip(points_dm: jax.Array, camera: PerspectiveCamera) -> jax.Array:
    """Clip-space positions (..., N, 4) of world points (..., N, 3) in dm seen by ``camera``.

    ``w`` is the distance from the eye along the view axis (dm); OpenGL depth maps [near, far] to [-1, 1].
    """
    height, width = camera.image_size
    x, y, z = points_dm[..., 0], points_dm[..., 1], points_dm[..., 2]
    w = camera.distance - z
    cx, cy = camera.center[..., 0], camera.center[..., 1]
    clip_x = (2.0 * camera.focal / width) * x + (2.0 * cx / width - 1.0) * w
    clip_y = (2.0 * camera.focal / height) * y + (1.0 - 2.0 * cy / height) * w
    n, f = camera.near, camera.far
    clip_z = (f + n) / (f - n) * w - 2.0 * f * n / (f - n)
    return jnp.stack([clip_x, clip_y, clip_z, w], axis=-1)


def project_perspective(points_dm: jax.Array, camera: PerspectiveCamera) -> jax.Array:
    """Image positions (..., N, 2) in pixels (x right, y down) of world points (..., N, 3) in dm."""
    w = camera.distance - points_dm[..., 2]
    u = camera.center[..., 0] + camera.focal * points_dm[..., 0] / w
    v = camera.center[..., 1] - camera.focal * points_dm[..., 1] / w
    return jnp.stack([u, v], axis=-1)


def clip_to_pixels(clip: jax.Array, image_size: tuple[int, int]) -> jax.Array:
    """Pixel positions (..., N, 2) (x right, y down) of clip-space positions (..., N, 4)."""
    height, width = image_size
    inv_w = 1.0 / clip[..., 3]
    u = (clip[..., 0] * inv_w + 1.0) * (0.5 * width)
    v = (1.0 - clip[..., 1] * inv_w) * (0.5 * height)
    return jnp.stack([u, v], axis=-1)


def scaled_ortho_pixels(
    vertices_mm: jax.Array,
    angles: jax.Array,
    scale: jax.Array,
    translation_px: jax.Array,
    image_size: tuple[int, int] = (DENG_IMAGE_SIZE, DENG_IMAGE_SIZE),
) -> jax.Array:
    """The paper's scaled orthographic projection ``s = f Pr R S + t2d``, in pixels (x right, y down).

    ``scale`` (..., 1) is in pixels per mm (``DENG_ORTHO_SCALE`` = 1.015 frames a face at 224 px like
    the default perspective camera); ``translation_px`` (..., 2) is the image position of the model
    origin relative to the image centre, pixels (x right, y down). Returns (..., N, 3): pixel x,
    pixel y, and the rotated z in mm (height towards the viewer).
    """
    height, width = image_size
    rotated = rigid_transform(vertices_mm, angles) * MM_PER_DM
    s = jnp.asarray(scale)[..., None, :1]
    t = jnp.asarray(translation_px)[..., None, :]
    u = width / 2.0 + s[..., 0] * rotated[..., 0] + t[..., 0]
    v = height / 2.0 - s[..., 0] * rotated[..., 1] + t[..., 1]
    return jnp.stack([u, v, rotated[..., 2]], axis=-1)


def ortho_clip(
    pixels_depth: jax.Array, image_size: tuple[int, int], depth_extent_mm: float = 500.0
) -> jax.Array:
    """Clip-space positions (..., N, 4) (w = 1) of scaled-orthographic outputs (pixel x, pixel y,
    height in mm); heights in [-depth_extent_mm, depth_extent_mm] map to NDC depth [1, -1]."""
    height, width = image_size
    x = 2.0 * pixels_depth[..., 0] / width - 1.0
    y = 1.0 - 2.0 * pixels_depth[..., 1] / height
    z = -pixels_depth[..., 2] / depth_extent_mm
    return jnp.stack([x, y, z, jnp.ones_like(x)], axis=-1)
