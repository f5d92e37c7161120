"""Texture atlases for reconstructions: per-vertex colours (and the photo) baked in UV space, pure JAX.

Conventions: a texture is (H, W, 3) float32 RGB in [0, 1], row 0 at the top; texel (row i, col j)
has its centre at u = (j + 0.5) / W, v = 1 - (i + 0.5) / H (OpenGL/OBJ: v up, (0, 0) bottom-left),
so the array is written to PNG as it is and OBJ ``vt`` lines hold the model's UVs unchanged.

How: the mesh is rasterized with the project renderer in UV space (clip x = 2u - 1, y = 2v - 1,
z = 0, w = 1; the UV triangles are ``model.uv.triangles``, row f = corners of ``model.triangles[f]``),
once per (UV map, size) and cached. Each covered texel then knows its triangle and barycentrics:
per-vertex attributes interpolate with ``render.interpolate`` over the *model's* triangles.
Uncovered texels within ``dilation`` texels of covered ones take the colour of a nearest covered
texel (a gather through an index map computed once per layout, so bilinear and mipmapped lookups
near seams do not pull in background); the rest take the mean colour. Overlapping UV triangles (ICT's eyeballs are mapped twice over) show the lowest id.

Photo detail (``bake_fit_texture``): per-vertex colours hold one sample of the 224-px aligned crop
per vertex, blurrier than the photo. Each texel's 3-D point (interpolated vertex positions, mm)
is projected with the fitted pose and Deng camera into the crop, mapped by the crop -> photo affine
onto the original photo and sampled bilinearly there. Facing and depth are not re-tested per
texel: the texel's photo weight is the interpolation of a per-vertex weight, 1 on vertices the fit took from
the photo (``FitResult.vertex_visible``: facing, depth-tested, unoccluded skin of the face region)
shrunk over ``PHOTO_RINGS`` one-rings by ``texture.vertex.photo_weight`` as the per-vertex texture
is, times one minus the fit's occlusion map sampled (bilinear) at the texel's crop position, which cuts finer than the vertex
spacing along the occluder's outline. The texel colour is
``w * photo + (1 - w) * vertex colour``: the photo at full resolution inside the visible face, the
fit's own colours (albedo under the fitted light) on occluded, unseen and non-skin parts, a smooth
blend between. What the occlusion map misses still leaks into the texture (as into the per-vertex
colours).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.morphable.model import MorphableModel, UVMap
from occface_jax.render import camera as cam
from occface_jax.render.interpolate import interpolate, interpolate_planes
from occface_jax.render.raster import Raster, rasterize
from occface_jax.texture.vertex import photo_weight

#: Texels the baked colours are grown across seams and into empty space.
DEFAULT_DILATION = 8


def uv_clip(coords: jax.Array) -> jax.Array:
    """Clip-space positions (U, 4) of UVs (U, 2) in [0, 1]: x = 2u - 1, y = 2v - 1, z = 0, w = 1."""
    coords = jnp.asarray(coords, jnp.float32)
    ones = jnp.ones(coords.shape[:-1] + (1,), coords.dtype)
    return jnp.concatenate([2.0 * coords - 1.0, 0.0 * ones, ones], axis=-1)


class UVLayout(NamedTuple):
    """What baking needs of a UV map at one texture size (colour-independent, so computed once).

    raster: the UV-space :class:`Raster` (H, W); ``triangle_id`` indexes the model's triangles.
    sources: (H, W) int32 flat texel index each texel takes its colour from: itself where covered,
      the nearest covered texel (8-neighbour steps) within the dilation margin, else -1.
    """

    raster: Raster
    sources: jax.Array


@functools.lru_cache(maxsize=2)
def uv_layout(
    uv: UVMap, size: tuple[int, int] | None = None, dilation: int = DEFAULT_DILATION
) -> UVLayout:
    """The :class:`UVLayout` of a model's UV map (cached per map, size and dilation; ``size``
    (height, width) defaults to ``uv.texture_size``). About 4 s the first time in a process
    (mostly compiling the rasterizer), then free."""
    size = tuple(int(s) for s in (size or uv.texture_size))
    fn = jax.jit(functools.partial(rasterize, image_size=size, tile=4))
    raster = fn(uv_clip(uv.coords), jnp.asarray(uv.triangles))
    sources = jax.jit(dilation_sources, static_argnums=1)(raster.mask, int(dilation))
    return jax.block_until_ready(UVLayout(raster, sources))


def uv_raster(uv: UVMap, size: tuple[int, int] | None = None) -> Raster:
    """The UV-space raster (H, W) of a model's UV map (see :func:`uv_layout`)."""
    return uv_layout(uv, size).raster


#: 8-neighbour offsets (row, col), in the order a growing texel prefers its source.
_NEIGHBOURS = ((0, -1), (0, 1), (-1, 0), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))


def dilation_sources(coverage: jax.Array, texels: int) -> jax.Array:
    """(H, W) int32 flat index of the texel each texel takes its colour from: covered texels
    (``coverage`` > 0) themselves; an empty texel within ``texels`` 8-neighbour steps of covered
    ones the source of a neighbour grown one step earlier (edge neighbours first), i.e. a nearest
    covered texel in steps; -1 beyond. Dilation by a gather: bilinear and mipmapped lookups near
    UV seams then read the surface's own colours, not the background."""
    h, w = coverage.shape
    index = jnp.arange(h * w, dtype=jnp.int32).reshape(h, w)
    start = jnp.where(coverage > 0, index, -1)

    def step(_: int, src: jax.Array) -> jax.Array:
        padded = jnp.pad(src, 1, constant_values=-1)
        pick = jnp.full_like(src, -1)
        for dy, dx in reversed(_NEIGHBOURS):
            near = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
            pick = jnp.where(near >= 0, near, pick)
        return jnp.where(src >= 0, src, pick)

    return jax.lax.fori_loop(0, texels, step, start)


def dilate(texture: jax.Array, sources: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``texture`` (H, W, C) with every texel replaced by its source's colour (``sources`` from
    :func:`dilation_sources`); returns (texture, coverage (H, W): 1 where there was a source)."""
    h, w, c = texture.shape
    flat = texture.reshape(h * w, c)
    grown = flat[jnp.maximum(sources, 0).reshape(-1)].reshape(h, w, c)
    covered = (sources >= 0).astype(texture.dtype)
    return grown * covered[..., None], covered


def fill_empty(texture: jax.Array, coverage: jax.Array) -> jax.Array:
    """Texels with ``coverage`` 0 take the mean colour of the covered ones (no black for mipmaps)."""
    weight = (coverage > 0).astype(texture.dtype)[..., None]
    mean = jnp.sum(texture * weight, axis=(0, 1)) / jnp.maximum(jnp.sum(weight), 1.0)
    return texture * weight + mean * (1 - weight)


def sample_bilinear(
    image: jax.Array, points: jax.Array, size: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """``image`` (H, W, C) at pixel positions ``points`` (..., 2) (x right, y down, centres at
    +0.5), bilinear, edges clamped; and whether each point lies inside the image (...).
    ``size`` (height, width), when given, is the part of ``image`` (its top left) that holds the
    picture, the rest padding (see :func:`padded_photo`); it may be traced."""
    h, w = image.shape[:2] if size is None else (size[0], size[1])
    x, y = points[..., 0] - 0.5, points[..., 1] - 0.5
    inside = (points[..., 0] >= 0) & (points[..., 0] <= w) & (points[..., 1] >= 0)
    inside = inside & (points[..., 1] <= h)
    x0 = jnp.clip(jnp.floor(x), 0, w - 1)
    y0 = jnp.clip(jnp.floor(y), 0, h - 1)
    fx = jnp.clip(x - x0, 0, 1)[..., None]
    fy = jnp.clip(y - y0, 0, 1)[..., None]
    x0i, y0i = x0.astype(jnp.int32), y0.astype(jnp.int32)
    x1i, y1i = jnp.minimum(x0i + 1, w - 1), jnp.minimum(y0i + 1, h - 1)
    top = image[y0i, x0i] * (1 - fx) + image[y0i, x1i] * fx
    bottom = image[y1i, x0i] * (1 - fx) + image[y1i, x1i] * fx
    return top * (1 - fy) + bottom * fy, inside


def sample_nearest(image: jax.Array, points: jax.Array) -> jax.Array:
    """``image`` (H, W, ...) at the pixel holding each of ``points`` (..., 2) (x right, y down;
    pixel (col, row) spans [col, col + 1) x [row, row + 1)); points off the image read the nearest
    border pixel."""
    h, w = image.shape[:2]
    col = jnp.clip(jnp.floor(points[..., 0]).astype(jnp.int32), 0, w - 1)
    row = jnp.clip(jnp.floor(points[..., 1]).astype(jnp.int32), 0, h - 1)
    return jnp.asarray(image)[row, col]


@jax.jit
def bake_vertex_colors(layout: UVLayout, triangles: jax.Array, colors: jax.Array) -> jax.Array:
    """Texture (H, W, C) of per-vertex ``colors`` (N, C) over the UV ``layout`` of ``triangles``
    (the model's (F, 3)): barycentric interpolation, dilated, the rest filled with the mean."""
    texture = interpolate(jnp.asarray(colors, jnp.float32), layout.raster, triangles)
    return fill_empty(*dilate(texture, layout.sources))


@jax.jit
def texel_attributes(
    layout: UVLayout,
    triangles: jax.Array,
    vertex_triangles: jax.Array,
    vertices: jax.Array,
    colors: jax.Array,
    visible: jax.Array,
    angles: jax.Array,
    translation: jax.Array,
    camera: cam.PerspectiveCamera,
    crop_to_photo: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Per texel of the ``layout``, interpolated in one pass: the surface point's crop and photo
    pixel positions (H, W, 2) each (``vertices`` (N, 3) mm, posed by ``angles`` (3,) rad and
    ``translation`` (3,) dm, projected by the crop's ``camera``, mapped by ``crop_to_photo``
    (2, 3)), its photo weight (H, W, 1) (``photo_weight(visible)``) and its vertex colour
    (H, W, 3) (``colors`` (N, 3))."""
    weight = photo_weight(visible, triangles, vertex_triangles)[:, None]
    # The pose is affine, so it is applied to the N vertices rather than the H x W texel points.
    world = cam.rigid_transform(jnp.asarray(vertices, jnp.float32), angles, translation)
    attrs = jnp.concatenate([world, weight, jnp.asarray(colors, jnp.float32)], axis=1)
    planes = interpolate_planes(attrs, layout.raster, triangles)
    crop = cam.project_perspective(jnp.stack(planes[:3], axis=-1), camera)
    affine = jnp.asarray(crop_to_photo)  # written out: a (H W, 2) x (2, 2) product is slow here
    points = crop[..., :1] * affine[:, 0] + crop[..., 1:] * affine[:, 1] + affine[:, 2]
    weight, base = planes[3][..., None], jnp.stack(planes[4:], axis=-1)
    return crop, points, weight, base


@jax.jit
def blend_texture(
    layout: UVLayout, weight: jax.Array, base: jax.Array, sampled: jax.Array, usable: jax.Array
) -> jax.Array:
    """``w * sampled + (1 - w) * base`` per texel, w the texels' photo ``weight`` (H, W, 1) times
    ``usable`` (H, W) in [0, 1] (0 off the photo or on the occluder); dilated, filled."""
    weight = weight * usable[..., None]
    texture = jnp.clip(weight * sampled + (1 - weight) * base, 0, 1)
    return fill_empty(*dilate(texture, layout.sources))


def bake_photo_texture(
    layout: UVLayout,
    triangles: jax.Array,
    vertex_triangles: jax.Array,
    vertices: jax.Array,
    colors: jax.Array,
    visible: jax.Array,
    angles: jax.Array,
    translation: jax.Array,
    camera: cam.PerspectiveCamera,
    crop_to_photo: jax.Array,
    photo: jax.Array,
    occlusion: jax.Array | None = None,
) -> jax.Array:
    """Texture (H, W, 3) in [0, 1]: the photo sampled per texel where the fit saw the face, the
    per-vertex ``colors`` (N, 3) elsewhere (see the module doc).

    ``vertices`` (N, 3) mm, model frame; ``visible`` (N,) bool; ``angles`` (3,) rad and
    ``translation`` (3,) dm the fitted pose; ``camera`` the crop's Deng camera; ``crop_to_photo``
    (2, 3) affine from crop pixels to ``photo`` (H, W, 3) pixels (project pixel convention);
    ``occlusion`` (S, S), 1 = occluder, over the crop: texels on it (bilinear, so edges are soft)
    never take the photo, a finer cut than the per-vertex visibility.
    Jitted pieces: the photo's sampling compiles per size bucket (:func:`padded_photo`), the
    rest once per layout.
    """
    crop, points, weight, base = texel_attributes(
        layout, triangles, vertex_triangles, vertices, colors, visible, angles, translation,
        camera, crop_to_photo,
    )  # fmt: skip
    padded, size = padded_photo(photo)
    sampled, inside = _sample(padded, points, size)
    usable = inside.astype(jnp.float32)
    if occlusion is not None:
        occluded = _sample(jnp.asarray(occlusion, jnp.float32)[..., None], crop)[0][..., 0]
        usable = usable * (1.0 - jnp.clip(occluded, 0, 1))
    return blend_texture(layout, weight, base, sampled, usable)


PHOTO_BUCKET = 256  # photos are padded to multiples of this (pixels) before sampling


def padded_photo(photo: np.ndarray, bucket: int = PHOTO_BUCKET) -> tuple[np.ndarray, np.ndarray]:
    """``photo`` (H, W, C) float32, zero-padded on the bottom and right to multiples of ``bucket``
    pixels, and its (H, W): so that the sampling compiles once per bucket, not per photo size."""
    photo = np.asarray(photo, np.float32)
    height, width = photo.shape[:2]
    padded = np.zeros(
        (-(-height // bucket) * bucket, -(-width // bucket) * bucket) + photo.shape[2:], np.float32
    )
    padded[:height, :width] = photo
    return padded, np.array([height, width], np.int32)


_sample = jax.jit(sample_bilinear)


def bake_fit_texture(
    model: MorphableModel,
    fit: Any,
    photo: np.ndarray | None = None,
    crop_to_photo: np.ndarray | None = None,
    crop_size: int = 224,
    size: tuple[int, int] | None = None,
    dilation: int = DEFAULT_DILATION,
) -> np.ndarray:
    """The texture (H, W, 3) float32 of a fit (``fit.FitResult`` of the full ``model``, which must
    carry UVs). With ``photo`` (H, W, 3) in [0, 1] and ``crop_to_photo`` (2, 3) the visible face is
    sampled from the photo per texel, off ``fit.occlusion``; without them (or for a pose without a 3-D translation) the
    per-vertex colours alone are baked. ``size`` (height, width) defaults to the atlas's own."""
    if model.uv is None:
        raise ValueError(f"model {model.name} has no texture coordinates")
    layout = uv_layout(model.uv, size, dilation)
    triangles = jnp.asarray(model.triangles)
    translation = np.asarray(fit.coeffs.get("translation", np.zeros(0)))
    if photo is None or crop_to_photo is None or translation.shape != (3,):
        return np.asarray(bake_vertex_colors(layout, triangles, fit.vertex_colors))
    texture = bake_photo_texture(
        layout,
        triangles,
        jnp.asarray(model.vertex_triangles),
        fit.vertices,
        fit.vertex_colors,
        fit.vertex_visible,
        jnp.asarray(fit.coeffs["angles"]),
        jnp.asarray(translation),
        cam.deng_camera(crop_size),
        jnp.asarray(crop_to_photo, jnp.float32),
        photo,
        getattr(fit, "occlusion", None),
    )
    return np.asarray(texture)
