"""What the two de-occlusion stages share (N_cont ``contour.py``, N_syn ``synthesis.py``): their
models' names, one Adam per model, the data (synthetic occluded faces mixed with real photos with
pasted occluders, holes from the occluder or free-form), batches and random flips.

Batch (``make_batch``, numpy, S = ``config.generator.input_size``): ``image`` (B, S, S, 3) the
occluded face, RGB in [0, 1]; ``clean`` (B, S, S, 3) the face without occluders (ground truth);
``mask`` (B, S, S) the hole, 1 = to repaint; ``gray`` (B, S, S) luma of ``image`` (what N_cont
sees outside the hole); ``gray_clean`` (B, S, S) luma of ``clean`` (what its discriminator is
conditioned on); ``contour`` (B, S, S) Canny (sigma 1.8) of ``clean``, {0, 1} = C_true.
"""

from __future__ import annotations

import warnings
from typing import Any

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from occface_jax.data.augment import OccludedPhotos
from occface_jax.data.inpainting import FaceCrops, InpaintingPairs, Mixture
from occface_jax.data.pipeline import occlusion_config, source_from_config, split_validation
from occface_jax.errors import OccfaceError
from occface_jax.paths import shared_dir
from occface_jax.train.task import Optimizer, Task, optimizer_from_config

IMAGE_KEYS = ("image", "clean")
MAP_KEYS = ("mask", "gray", "gray_clean", "contour")
SHARED_PREFIX = "shared:"


def photos_root(setting: str) -> str | None:
    """The folder ``inpainting.photos`` names: a path, or ``shared:REL`` inside ``$OCCFACE_SHARED``
    (None, with a warning, when there is no shared folder); '' = no photos."""
    if not setting:
        return None
    if setting.startswith(SHARED_PREFIX):
        root = shared_dir()
        if root is None:
            warnings.warn(
                f"inpainting.photos={setting!r}: no shared data folder (OCCFACE_SHARED); "
                "training on synthetic faces only",
                stacklevel=2,
            )
            return None
        return str(root / setting.removeprefix(SHARED_PREFIX))
    return setting


class InpaintingTask(Task):
    """Base of the two de-occlusion stages: a ``generator`` and a ``discriminator``, each with its
    own Adam (``config.train.optim.<model>``), the discriminator's phase first."""

    architecture = ("generator", "discriminator")

    def optimizers(self, config: ml_collections.ConfigDict) -> dict[str, Optimizer]:
        steps = int(config.train.steps)
        return {
            name: optimizer_from_config(config.train.optim[name], steps) for name in self.models
        }

    def sources(self, config: ml_collections.ConfigDict) -> tuple[Any, Any]:
        """Training: the synthetic faces but the last ``data.validation_size``, mixed with the
        photos of ``inpainting.photos`` (``inpainting.photo_fraction`` of the records) and holes
        from occluders or free-form (``inpainting.p_freeform``). Evaluation: the held-out synthetic
        faces with their occluders' holes."""
        settings = config.inpainting
        synthetic, held_out = split_validation(
            source_from_config(config.data), int(config.data.validation_size)
        )
        train = synthetic
        root = photos_root(str(settings.photos))
        fraction = float(settings.photo_fraction)
        if root is not None and fraction > 0:
            size = int(config.data.image_size)
            photos = OccludedPhotos(
                FaceCrops(root, size), int(settings.seed), occlusion_config(config.data)
            )
            train = Mixture([synthetic, photos], [1.0 - fraction, fraction], len(synthetic))
        dilation = float(settings.dilation)
        seed = int(settings.seed)
        return (
            InpaintingPairs(train, seed, float(settings.p_freeform), dilation),
            InpaintingPairs(held_out, seed, 0.0, dilation) if len(held_out) else None,
        )

    def make_batch(self, records: dict[str, Any], config: ml_collections.ConfigDict) -> dict:
        size = int(config.generator.input_size)
        batch = {k: np.asarray(records[k], np.float32) for k in IMAGE_KEYS + MAP_KEYS}
        if batch["image"].shape[1:3] != (size, size):
            batch = {k: np.stack([_resize(x, size, k) for x in v]) for k, v in batch.items()}
        return batch

    def flipped(self, batch: dict, key: jax.Array, config: ml_collections.ConfigDict) -> dict:
        """The batch with random examples mirrored left-right (``train.flip``, default on)."""
        if not bool(config.train.get("flip", True)):
            return batch
        n = batch["image"].shape[0]
        flip = jax.random.bernoulli(jax.random.fold_in(key, 17), 0.5, (n,))

        def mirror(x: jax.Array) -> jax.Array:
            shape = (n,) + (1,) * (x.ndim - 1)
            return jnp.where(flip.reshape(shape), x[:, :, ::-1], x)

        return {k: mirror(v) for k, v in batch.items()}


def _resize(x: np.ndarray, size: int, key: str) -> np.ndarray:
    """One record's array at ``size`` x ``size``: images by area; the hole grows (any covered
    pixel); contours are redrawn as the cells an edge passes through."""
    small = cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA)
    if key in ("mask", "contour"):
        return (small > 0.0).astype(np.float32)
    return small


def check_kind(kind: str, kinds: tuple[str, ...]) -> str:
    if kind not in kinds:
        raise OccfaceError(f"loss.adversarial={kind!r}: one of {', '.join(kinds)}")
    return kind
