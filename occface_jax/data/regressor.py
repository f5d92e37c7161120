"""Training records of the coefficient regressor: the data engine's synthetic faces and real photos
with pasted occluders, in one record layout so that a :class:`~occface_jax.data.inpainting.Mixture`
of them stacks into batches.

- :class:`SyntheticRecords`: a synthetic source's records (``SyntheticFaces`` or the cached
  ``synthetic_cached`` set) reduced to the keys below, ``synthetic`` True.
- :class:`PhotoRecords`: every face of a :class:`~occface_jax.data.inpainting.FaceCrops` (the
  pipeline's Deng et al. crop; landmarks annotated or detected once), occluders pasted by
  :class:`~occface_jax.data.augment.OccludedPhotos` (``default_rng([seed, index])``: a record is
  the same on every read), ``coeffs`` all NaN (a photo has no ground truth), ``synthetic`` False.

Records (numpy; S = the sources' image size, K = the coefficient layout's size):

| key | shape | meaning |
| --- | --- | --- |
| occluded | (S, S, 3) float32 | the occluded face, RGB in [0, 1] |
| mask | (S, S) float32 | 1 = occluder over the face region |
| landmarks | (68, 2) float32 | pixels: synthetic = projected (noise-free); photo = annotated or detected |
| coeffs | (K,) float32 | ground truth (synthetic) or NaN (photo): read only by evaluation |
| index | () int64 | the synthetic sample index, or the photo face's index in its source |
| synthetic | () bool | True for a synthetic face, False for a photo |
"""

from __future__ import annotations

from typing import Any

import numpy as np

from occface_jax.data.augment import OccludedPhotos
from occface_jax.data.occluders import OcclusionConfig

#: The keys (and only these) of every record of this module, in the table's order.
RECORD_KEYS = ("occluded", "mask", "landmarks", "coeffs", "index", "synthetic")


def _record(record: dict[str, Any], coeffs: np.ndarray, index: Any, synthetic: bool) -> dict:
    return {
        "occluded": np.asarray(record["occluded"], np.float32),
        "mask": np.asarray(record["mask"], np.float32),
        "landmarks": np.asarray(record["landmarks"], np.float32),
        "coeffs": np.asarray(coeffs, np.float32),
        "index": np.int64(index),
        "synthetic": np.bool_(synthetic),
    }


class SyntheticRecords:
    """A synthetic source's records (keys ``occluded``, ``mask``, ``landmarks``, ``coeffs``,
    ``index``) in this module's layout, ``synthetic`` True. Picklable when the source is."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        return f"SyntheticRecords({self.source!r})"

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.source[int(index)]
        return _record(record, record["coeffs"], record["index"], True)


class PhotoRecords:
    """Face crops (``FaceCrops`` records: ``image``, ``landmarks``) with occluders pasted, in this
    module's layout: ``coeffs`` NaN of ``coeff_size``, ``index`` the crop's index, ``synthetic``
    False. Occluders from ``default_rng([seed, index])`` and ``occlusion`` (the regressor's data
    config, ``data.pipeline.occlusion_config``); the face region is the landmarks' hull raised to
    the hairline (``augment.face_region_from_landmarks``). Picklable when ``crops`` is."""

    def __init__(
        self,
        crops: Any,
        coeff_size: int,
        seed: int = 0,
        occlusion: OcclusionConfig = OcclusionConfig(),
    ) -> None:
        if int(coeff_size) < 1:
            raise ValueError(f"coeff_size must be >= 1, got {coeff_size}")
        self.crops, self.coeff_size = crops, int(coeff_size)
        self.photos = OccludedPhotos(crops, int(seed), occlusion)

    def __len__(self) -> int:
        return len(self.crops)

    def __repr__(self) -> str:
        return (
            f"PhotoRecords({self.crops!r}, coeff_size={self.coeff_size}, seed={self.photos.seed}, "
            f"{self.photos.config!r})"
        )

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"PhotoRecords index {index} out of range [0, {len(self)})")
        coeffs = np.full((self.coeff_size,), np.nan, np.float32)
        return _record(self.photos[index], coeffs, index, False)
