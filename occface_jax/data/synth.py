"""Synthetic occluded faces with full ground truth, rendered from a morphable model.

Sample ``i`` of ``SyntheticFaces(model, config, seed)`` draws everything from
``np.random.default_rng([seed, i])``: identity ~ N(0, 1), sparse expression blendshape weights in
[0, 1] (or PCA coefficients ~ N(0, 1)), albedo ~ N(0, 1), SH light, pose and translation, a background
(bundled photo crop or procedural texture) and occluders; it is rendered with the project renderer
(``occface_jax.morphable.rendering``, Deng et al.'s camera scaled to the image size). So the same index gives
the same sample on every machine and after a restart, and a grain ``MapDataset`` can shard, shuffle and
resume it.

Each sample (numpy, float32 unless said):

| key | shape | meaning |
| --- | --- | --- |
| occluded, clean | (S, S, 3) | image with / without occluders, RGB in [0, 1] |
| mask | (S, S) | 1 = occluder (alpha >= 0.5) over the face region |
| alpha | (S, S) | occluder opacity |
| face_region | (S, S) | 1 where the front-most triangle is in the model's face region |
| render_mask | (S, S) | antialiased coverage of the rendered head |
| gray | (S, S) | luma of ``occluded`` |
| contour | (S, S) | Canny (sigma 1.8) of ``clean`` (the complete contour map) |
| depth | (S, S) | view depth in mm from the eye plane, 0 off the head |
| landmarks | (68, 2) | projected iBUG-68 landmarks, pixels (x right, y down); the jaw (0-16) on the outline |
| landmarks_visible | (68,) bool | inside the image and not hidden by the head itself (depth test) |
| landmarks_unoccluded | (68,) bool | visible and not under the occlusion mask |
| coeffs | (K,) | flat coefficients in ``SyntheticFaces.layout`` (perspective pose, RGB light) |
| focal | () | focal length in pixels of the sample's camera (principal point at the image centre) |
| coverage | () | mask pixels / face-region pixels |
| index | () int64 | the sample index |
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from occface_jax.data.backgrounds import random_background
from occface_jax.data.contour import canny_contour, to_gray
from occface_jax.data.occluders import FaceFrame, OcclusionConfig, occlude
from occface_jax.morphable import CoeffLayout, contour, geometry
from occface_jax.morphable.rendering import project, render
from occface_jax.render import deng_camera
from occface_jax.render.camera import DENG_FOCAL, DENG_IMAGE_SIZE, euler_to_rotation


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """Sampling ranges of synthetic faces.

    ``max_angles_deg``: uniform in +/- (pitch, yaw, roll). ``translation_dm``: uniform x, y in +/- and
    z in [-z, z/3] (away from the camera is more common) in the Deng camera frame (decimetres; the eye
    is at z = 10). ``fallback_spatial_std`` scales the spatial albedo modes of a fallback albedo (all but
    its first 3, the skin-tone modes): they are polynomials fitted on the face region and grow large on
    the back of the head and the neck. ``light_std``: std of the SH coefficients of bands 0, 1, 2 (shared by the channels)
    and ``light_tint`` the std of per-channel deviations. ``exp_active``: how many blendshapes are on.
    ``focal_jitter``: the focal length is Deng et al.'s (1015 px at 224, scaled) times a factor uniform
    in 1 +/- ``focal_jitter``.
    """

    image_size: int = 128
    id_std: float = 1.0
    tex_std: float = 1.0
    exp_active: tuple[int, int] = (0, 8)
    exp_max: float = 0.8
    max_angles_deg: tuple[float, float, float] = (15.0, 35.0, 10.0)
    translation_dm: tuple[float, float, float] = (0.08, 0.08, 0.9)
    light_std: tuple[float, float, float] = (0.1, 0.2, 0.08)
    light_tint: float = 0.02
    fallback_spatial_std: float = 0.25
    p_photo_background: float = 0.6
    focal_jitter: float = 0.1
    landmark_depth_tolerance_mm: float = 5.0
    march_jaw: bool = (
        True  # jaw landmarks on the face's outline (``morphable.contour``), as detected
    )
    face_only: bool = False
    occlusion: OcclusionConfig = OcclusionConfig()


def sample_coefficients(
    model: Any, config: SynthConfig, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Random coefficient blocks (numpy float32) for ``model`` (keys as ``CoeffLayout.split``)."""
    n_exp = model.n_exp
    if model.exp_kind == "blendshape":
        exp = np.zeros(n_exp, np.float32)
        k = int(rng.integers(config.exp_active[0], config.exp_active[1] + 1))
        on = rng.choice(n_exp, size=min(k, n_exp), replace=False)
        exp[on] = rng.uniform(0.0, config.exp_max, on.size)
    else:
        exp = rng.normal(0.0, 1.0, n_exp).astype(np.float32)
    band_std = np.repeat(np.asarray(config.light_std, np.float64), [1, 3, 5])
    mono = rng.normal(0.0, band_std)
    light = (mono[None, :] + rng.normal(0.0, config.light_tint, (3, 9))).reshape(27)
    tex = rng.normal(0.0, config.tex_std, model.n_tex)
    if model.albedo_kind == "fallback":
        tex[3:] *= config.fallback_spatial_std
    tx, ty, tz = config.translation_dm
    return {
        "id": rng.normal(0.0, config.id_std, model.n_id).astype(np.float32),
        "exp": exp,
        "tex": tex.astype(np.float32),
        "angles": np.deg2rad(rng.uniform(-1, 1, 3) * np.asarray(config.max_angles_deg)).astype(
            np.float32
        ),
        "light": light.astype(np.float32),
        "translation": np.array(
            [rng.uniform(-tx, tx), rng.uniform(-ty, ty), rng.uniform(-tz, tz / 3)], np.float32
        ),
    }


def landmark_visibility(
    landmarks: np.ndarray,
    landmark_depth: np.ndarray,
    depth: np.ndarray,
    coverage: np.ndarray,
    tolerance_mm: float,
) -> np.ndarray:
    """(68,) bool: landmark inside the image, on the rendered head and at the front-most surface:
    some pixel of its 3 x 3 neighbourhood has a rendered depth within ``tolerance_mm`` of its own."""
    h, w = depth.shape
    col = np.floor(landmarks[:, 0]).astype(int)
    row = np.floor(landmarks[:, 1]).astype(int)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    offsets = np.array([-1, 0, 1])
    rr = np.clip(row[:, None, None] + offsets[None, :, None], 0, h - 1)
    cc = np.clip(col[:, None, None] + offsets[None, None, :], 0, w - 1)
    near = np.abs(depth[rr, cc] - landmark_depth[:, None, None]) < tolerance_mm
    on_head = coverage[rr, cc] > 0.5
    return inside & (near & on_head).reshape(len(landmarks), -1).any(axis=1)


_RENDERERS: dict[tuple[int, int, bool], tuple[Any, Any]] = {}


def _jitted_renderer(model: Any, image_size: int, march_jaw: bool = True):
    """The jitted render function of ``model`` at ``image_size``, one per (model object, size, jaw) in a
    process (the model's arrays are compile-time constants, so every new closure would recompile)."""
    key = (id(model), int(image_size), bool(march_jaw))
    cached = _RENDERERS.get(key)
    if cached is not None and cached[0] is model:
        return cached[1]
    jax_model = model.to_jax()
    base_camera = deng_camera(image_size)
    jaw = contour.for_model(model) if march_jaw else None

    def run(coeffs, focal):
        camera = dataclasses.replace(base_camera, focal=focal)
        out = render(jax_model, coeffs, camera, jaw=jaw)
        vertices = geometry.shape(jax_model, coeffs["id"], coeffs["exp"])
        _, depth_mm, pixels = project(jax_model, vertices, coeffs, camera)
        ids = jax_model.landmarks68
        if jaw is not None:
            rotation = euler_to_rotation(coeffs["angles"])
            ids = contour.landmark_ids(jaw, ids, pixels, rotation)
        return out.image, out.mask, out.depth, out.landmarks, out.triangle_id, depth_mm[ids]

    fn = jax.jit(run)
    _RENDERERS[key] = (model, fn)  # holding the model keeps its id from being reused
    return fn


class SyntheticFaces:
    """An index-addressed source of rendered, occluded faces (see module doc); ``len`` is ``size``.

    ``model`` is a ``MorphableModel``; the renderer is jit-compiled on first use in each process
    (grain workers included) and never pickled.
    """

    def __init__(
        self, model: Any, config: SynthConfig = SynthConfig(), seed: int = 0, size: int = 1_000_000
    ) -> None:
        self.model = model.face_only() if config.face_only else model
        self.config, self.seed, self.size = config, int(seed), int(size)
        self.layout = CoeffLayout.for_model(self.model)
        self._render = None
        self._face_triangles = np.zeros(self.model.n_triangles + 1, bool)
        self._face_triangles[np.asarray(self.model.face_triangles)] = True

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_render"] = None
        return state

    def __len__(self) -> int:
        return self.size

    def _renderer(self):
        if self._render is None:
            self._render = _jitted_renderer(
                self.model, self.config.image_size, self.config.march_jaw
            )
        return self._render

    def coefficients(self, index: int) -> dict[str, np.ndarray]:
        """The coefficient blocks of sample ``index`` (cheap: no rendering)."""
        rng = np.random.default_rng([self.seed, int(index)])
        return sample_coefficients(self.model, self.config, rng)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < self.size:
            raise IndexError(f"sample {index} outside 0..{self.size - 1}")
        rng = np.random.default_rng([self.seed, index])
        coeffs = sample_coefficients(self.model, self.config, rng)
        size = (self.config.image_size, self.config.image_size)
        jitter = self.config.focal_jitter
        focal = np.float32(
            DENG_FOCAL * size[1] / DENG_IMAGE_SIZE * rng.uniform(1 - jitter, 1 + jitter)
        )
        background = random_background(rng, size, self.config.p_photo_background)
        image, cover, depth, landmarks, tri, lm_depth = (
            np.asarray(x) for x in self._renderer()(coeffs, focal)
        )
        clean = np.clip(image + (1.0 - cover[..., None]) * background, 0.0, 1.0).astype(np.float32)
        face_region = self._face_triangles[tri].astype(np.float32)  # tri = -1 hits the False pad
        visible = landmark_visibility(
            landmarks, lm_depth, depth, cover, self.config.landmark_depth_tolerance_mm
        )
        frame = FaceFrame.from_landmarks(landmarks)
        occ = occlude(clean, face_region, frame, rng, self.config.occlusion)
        col = np.clip(np.floor(landmarks[:, 0]).astype(int), 0, size[1] - 1)
        row = np.clip(np.floor(landmarks[:, 1]).astype(int), 0, size[0] - 1)
        return {
            "occluded": occ.occluded,
            "clean": clean,
            "mask": occ.mask,
            "alpha": occ.alpha,
            "face_region": face_region,
            "render_mask": cover.astype(np.float32),
            "gray": to_gray(occ.occluded),
            "contour": canny_contour(clean),
            "depth": depth.astype(np.float32),
            "landmarks": landmarks.astype(np.float32),
            "landmarks_visible": visible,
            "landmarks_unoccluded": visible & (occ.mask[row, col] < 0.5),
            "coeffs": np.asarray(self.layout.join(coeffs), np.float32),
            "focal": focal,
            "coverage": np.float32(occ.coverage),
            "index": np.int64(index),
        }
