"""The occlusion-robust face mesh: MediaPipe's 468-point network fine-tuned by self-distillation so
that an occluder does not move its points (``occface train face_mesh``).

Teacher: MediaPipe's face mesh as shipped (frozen), on the clean face. Student: the same network,
started from the same weights, on the same crop with the data engine's occluders pasted. Loss: the
mean L1 distance of the student's 468 points from the teacher's (x, y in percent of the 192 px
crop; z at ``loss.z_weight``; each face weighted by the teacher's presence), plus ``loss.presence_weight`` x the BCE of the student's presence
logit against the teacher's presence probability on the clean crop (an occluded face is still a
face, and a crop that misses the face still is not). No human label enters: the student learns the
teacher's own convention (the 468 -> 68 map and the dense correspondences stay valid) and only
stops following the occluder.

Crops (inside the jitted step, from ``key``): the pipeline's region rule (``faces.face_mesh``):
a first teacher pass on the upright square around the 68 landmarks' box (x ``ROI_SCALE``), the
region from its 468 points (eyes level, 1.5 x their box), then jittered as the region search
jitters (scale, shift, rotation from ``loss.jitter``; ``far_fraction`` of them far off the face,
which the teacher scores low), a random horizontal flip (both crops: the
teacher labels the flipped face) and a random brightness / contrast / gamma (both crops). Batch:
``clean`` and ``occluded`` (B, H, W, 3) float32 [0, 1], ``landmarks`` (B, 68, 2) pixels.

Evaluation (fixed crops, no jitter): per face the mean distance (crop px) of the student's points
on the occluded crop from the teacher's on the clean one (``student_px``), the same for the teacher
itself on the occluded crop (``teacher_px``: what the student has to beat) and the student on the
clean crop (``student_clean_px``: drift from the teacher where nothing hides the face).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from occface_jax.data.augment import OccludedPhotos
from occface_jax.data.inpainting import Mixture
from occface_jax.data.pipeline import (
    occlusion_config,
    source_from_config,
    source_repr,
    split_validation,
)
from occface_jax.faces.face_mesh import EYE_CORNERS, ROI_SCALE
from occface_jax.models.face_mesh import INPUT_SIZE, build_face_mesh, load_face_mesh
from occface_jax.texture.atlas import sample_bilinear
from occface_jax.train.task import Phase, Task, photo_crops

#: iBUG 68 outer eye corners (subject's right, left): the first crop's rotation.
IBUG_EYE_CORNERS = (36, 45)
#: The record fields the stage reads (synthetic and photo records reduced to them).
RECORD_KEYS = ("clean", "occluded", "landmarks")


class Fields:
    """Records of ``source`` reduced to ``keys`` (so that sources of other layouts mix)."""

    def __init__(self, source: Any, keys: tuple[str, ...] = RECORD_KEYS) -> None:
        self.source, self.keys = source, keys

    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        return f"Fields({source_repr(self.source)}, {self.keys})"

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.source[index]
        return {k: np.asarray(record[k], np.float32) for k in self.keys}


class Cycled:
    """``source`` repeated to ``size`` records (record i is ``source[i % len(source)]``): a small
    photo folder gets a fresh occluder draw per index (``OccludedPhotos`` seeds by index)."""

    def __init__(self, source: Any, size: int) -> None:
        self.source, self.size = source, int(size)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"Cycled({source_repr(self.source)}, {self.size})"

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.source[int(index) % len(self.source)]


def _pixel_grid(size: int) -> jax.Array:
    """(size, size, 3) homogeneous crop pixel centres (x + 0.5, y + 0.5, 1)."""
    c = jnp.arange(size, dtype=jnp.float32) + 0.5
    x, y = jnp.meshgrid(c, c)
    return jnp.stack([x, y, jnp.ones_like(x)], axis=-1)


def region_from_points(points: jax.Array, eyes: tuple[int, int]) -> tuple[jax.Array, ...]:
    """(centre (B, 2), side (B,), rotation (B,)) of MediaPipe's region around ``points`` (B, N, 2+):
    the square of ``ROI_SCALE`` x the longer side of their box, rotated so that points
    ``eyes`` lie level (as ``faces.face_mesh.roi_from_landmarks``)."""
    xy = points[..., :2]
    lo, hi = xy.min(axis=1), xy.max(axis=1)
    d = xy[:, eyes[1]] - xy[:, eyes[0]]
    return (lo + hi) / 2.0, jnp.max(hi - lo, axis=-1) * ROI_SCALE, jnp.arctan2(d[:, 1], d[:, 0])


def crop_to_image(centre: jax.Array, side: jax.Array, rotation: jax.Array, size: int) -> jax.Array:
    """(B, 2, 3) affine maps crop pixels -> image pixels (``FaceRegion.crop_to_image``, batched)."""
    c, s = jnp.cos(rotation), jnp.sin(rotation)
    linear = jnp.stack([jnp.stack([c, -s], -1), jnp.stack([s, c], -1)], -2)
    linear = linear * (side / size)[:, None, None]
    translation = centre - linear @ jnp.full((2,), size / 2.0)
    return jnp.concatenate([linear, translation[..., None]], axis=-1)


def crop_images(images: jax.Array, affine: jax.Array, size: int) -> jax.Array:
    """(B, size, size, C) bilinear crops (edges replicated) of ``images`` (B, H, W, C) by ``affine``."""
    grid = _pixel_grid(size)
    points = jnp.einsum("bij,hwj->bhwi", affine, grid)
    return jax.vmap(lambda im, p: sample_bilinear(im, p)[0])(images, points)


class FaceMeshTask(Task):
    """One model (``face_mesh``, MediaPipe's weights at step 0), one phase (distillation), the
    shipped face mesh frozen as the teacher."""

    name = "face_mesh"
    models = {"face_mesh": (build_face_mesh, "model")}

    def sources(self, config: ml_collections.ConfigDict) -> tuple[Any, Any]:
        """Training: the synthetic faces of ``config.data`` but the last ``data.validation_size``;
        with ``data.root``, mixed with every face of that folder's photos (``FaceCrops``:
        annotated or detected once; each index a new occluder draw), ``data.photo_fraction`` of
        the records. Evaluation: the held-out synthetic faces."""
        data = config.data
        train, held_out = split_validation(source_from_config(data), int(data.validation_size))
        train, held_out = Fields(train), (Fields(held_out) if len(held_out) else None)
        crops, fraction = photo_crops(data)
        if crops is None:
            return train, held_out
        photos = OccludedPhotos(Cycled(crops, len(train)), int(data.seed), occlusion_config(data))
        mixed = Mixture([train, Fields(photos)], [1.0 - fraction, fraction], len(train))
        return Fields(mixed), held_out

    def phases(self, config: ml_collections.ConfigDict) -> list[Phase]:
        return [Phase(self.loss, updates="face_mesh")]

    def frozen(self, config: ml_collections.ConfigDict, upstream: dict) -> dict[str, nnx.Module]:
        return {"teacher": load_face_mesh(str(config.model.weights) or None)}

    def make_batch(self, records: dict[str, Any], config: ml_collections.ConfigDict) -> dict:
        return {
            "clean": np.asarray(records["clean"], np.float32),
            "occluded": np.asarray(records["occluded"], np.float32),
            "landmarks": np.asarray(records["landmarks"], np.float32)[..., :2],
        }

    def regions(self, teacher: nnx.Module, batch: dict, key: jax.Array | None, config) -> jax.Array:
        """(B, 2, 3) crop -> image affines: the pipeline's refined region, jittered with ``key``."""
        first = crop_to_image(*region_from_points(batch["landmarks"], IBUG_EYE_CORNERS), INPUT_SIZE)
        points, _ = teacher(crop_images(batch["clean"], first, INPUT_SIZE))
        points = jnp.einsum("bij,bnj->bni", first[:, :, :2], points[..., :2]) + first[:, None, :, 2]
        centre, side, rotation = region_from_points(points, EYE_CORNERS)
        if key is not None:
            jitter = config.loss.jitter
            b = centre.shape[0]
            k_far, k_scale, k_shift, k_rot = jax.random.split(key, 4)
            # Some crops far off the face (the teacher scores them low): the student keeps
            # telling a framed face from a crop that misses it, which the region search needs.
            far = jax.random.bernoulli(k_far, float(jitter.far_fraction), (b,))
            scale = jnp.where(far[:, None], jnp.asarray(jitter.far_scale, jnp.float32), jnp.asarray(jitter.scale, jnp.float32))  # fmt: skip
            log_lo, log_hi = jnp.log(scale[:, 0]), jnp.log(scale[:, 1])
            side = side * jnp.exp(jax.random.uniform(k_scale, (b,), minval=log_lo, maxval=log_hi))
            shift = jnp.where(far, float(jitter.far_shift), float(jitter.shift))[:, None]
            centre = centre + side[:, None] * shift * jax.random.uniform(k_shift, (b, 2), minval=-1.0, maxval=1.0)  # fmt: skip
            rot = np.deg2rad(float(jitter.rotation_deg))
            rotation = rotation + jax.random.uniform(k_rot, (b,), minval=-rot, maxval=rot)
        return crop_to_image(centre, side, rotation, INPUT_SIZE)

    def crops(self, frozen: dict, batch: dict, key: jax.Array | None, config) -> dict:
        """Clean and occluded crops of each face (augmented with ``key``; fixed when None) and the
        teacher's outputs on the clean crop."""
        teacher = frozen["teacher"]
        k_region, k_flip, k_color = (None,) * 3 if key is None else jax.random.split(key, 3)
        affine = self.regions(teacher, batch, k_region, config)
        clean = crop_images(batch["clean"], affine, INPUT_SIZE)
        occluded = crop_images(batch["occluded"], affine, INPUT_SIZE)
        if key is not None:
            b = clean.shape[0]
            flip = jax.random.bernoulli(k_flip, 0.5, (b,))[:, None, None, None]
            clean = jnp.where(flip, clean[:, :, ::-1], clean)
            occluded = jnp.where(flip, occluded[:, :, ::-1], occluded)
            k_b, k_c, k_g = jax.random.split(k_color, 3)
            color = config.loss.color
            gain = jax.random.uniform(k_c, (b, 1, 1, 1), minval=1 - color, maxval=1 + color)
            bias = jax.random.uniform(k_b, (b, 1, 1, 1), minval=-color / 2, maxval=color / 2)
            gamma = jnp.exp(jax.random.uniform(k_g, (b, 1, 1, 1), minval=-color, maxval=color))

            def adjust(x: jax.Array) -> jax.Array:
                mean = x.mean(axis=(1, 2, 3), keepdims=True)
                return jnp.clip((x - mean) * gain + mean + bias, 1e-4, 1.0) ** gamma

            clean, occluded = adjust(clean), adjust(occluded)
        target, target_logit = teacher(clean)
        return {
            "clean": clean,
            "occluded": occluded,
            "target": jax.lax.stop_gradient(target),
            "target_logit": jax.lax.stop_gradient(target_logit),
        }

    def loss(
        self,
        models: dict,
        frozen: dict,
        batch: dict,
        key: jax.Array,
        config: ml_collections.ConfigDict,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        c = self.crops(frozen, batch, key, config)
        presence = jax.nn.sigmoid(c["target_logit"])
        z_weight, presence_weight = float(config.loss.z_weight), float(config.loss.presence_weight)

        weight = presence / jnp.maximum(jnp.sum(presence), 1e-6)  # points count where a face is

        def distillation(inputs: jax.Array) -> tuple[jax.Array, ...]:
            points, logit = models["face_mesh"](inputs)
            error = jnp.abs(points - c["target"]) * (100.0 / INPUT_SIZE)  # percent of the crop
            xy = jnp.sum(weight * error[..., :2].mean(axis=(1, 2)))
            z = jnp.sum(weight * error[..., 2].mean(axis=1))
            bce = jnp.mean(
                jnp.maximum(logit, 0) - logit * presence + jnp.log1p(jnp.exp(-jnp.abs(logit)))
            )
            return xy + z_weight * z + presence_weight * bce, xy, z, bce

        loss, xy, z, bce = distillation(c["occluded"])
        terms = {"xy_percent": xy, "z_percent": z, "presence_bce": bce}
        clean_weight = float(config.loss.get("clean_weight", 0.0))
        if clean_weight:  # the clean crop too: the student must not drift where nothing hides
            anchor, terms["clean_xy_percent"], _, _ = distillation(c["clean"])
            loss = loss + clean_weight * anchor
        return loss, terms

    def evaluate(self, models: dict, frozen: dict, batch: dict, config) -> dict:
        c = self.crops(frozen, batch, None, config)

        def px(points: jax.Array) -> jax.Array:
            d = points[..., :2] - c["target"][..., :2]
            return jnp.sqrt(jnp.sum(d**2, axis=-1)).mean(axis=-1)

        student, student_logit = models["face_mesh"](c["occluded"])
        teacher, teacher_logit = frozen["teacher"](c["occluded"])
        student_clean, _ = models["face_mesh"](c["clean"])
        return {
            "student_px": px(student),
            "teacher_px": px(teacher),
            "student_clean_px": px(student_clean),
            "student_presence": jax.nn.sigmoid(student_logit),
            "teacher_presence": jax.nn.sigmoid(teacher_logit),
        }

    def images(self, models: dict, frozen: dict, batch: dict, config) -> dict:
        c = self.crops(frozen, batch, None, config)
        student, _ = models["face_mesh"](c["occluded"])
        teacher, _ = frozen["teacher"](c["occluded"])
        return {
            "occluded_teacher": _draw_points(c["occluded"], teacher, c["target"]),
            "occluded_student": _draw_points(c["occluded"], student, c["target"]),
        }


def _draw_points(images: jax.Array, points: jax.Array, target: jax.Array) -> jax.Array:
    """``images`` with ``points`` (B, N, 2+) as red dots and ``target`` as green ones (crop px)."""
    b, h, w, _ = images.shape

    def splat(p: jax.Array) -> jax.Array:
        col = jnp.clip(p[..., 0].astype(jnp.int32), 0, w - 1)
        row = jnp.clip(p[..., 1].astype(jnp.int32), 0, h - 1)
        return jnp.zeros((h, w)).at[row, col].set(1.0)

    red, green = jax.vmap(splat)(points), jax.vmap(splat)(target)
    out = images * (1 - jnp.maximum(red, green))[..., None]
    return out + jnp.stack([red, green, jnp.zeros_like(red)], -1)
