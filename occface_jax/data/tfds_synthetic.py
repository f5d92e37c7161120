"""A tensorflow-datasets builder that writes a generated synthetic split once, as array_record files
that many hosts then read by index (``builder.as_data_source``) without TensorFlow.

Images are stored as uint8 ``Tensor`` features (zlib), not ``Image`` features: encoding PNG/JPEG in
TFDS needs TensorFlow, raw tensors do not. :func:`decode_record` turns a stored record back into the
float32 conventions of :mod:`occface_jax.data.synth`. TFDS shuffles records when it writes them, so
stored record ``k`` is not synthetic sample ``k``: the ``index`` field says which sample it is.

Usage::

    builder = SyntheticOccludedFaces(data_dir=..., image_size=128, num_examples=10_000, seed=0)
    builder.download_and_prepare()            # generates and writes the split (once)
    source = builder.as_data_source("train")  # random access, e.g. grain.MapDataset.source(source)
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from occface_jax.data.contour import to_gray
from occface_jax.data.synth import SynthConfig, SyntheticFaces
from occface_jax.morphable import load_model
from occface_jax.paths import cache_dir

UINT8_IMAGES = ("occluded", "clean")
UINT8_MAPS = ("mask", "alpha", "face_region", "contour")


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def encode_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """A synthetic sample in the stored (feature) form: images and maps quantised to uint8."""
    out = {k: _to_uint8(sample[k]) for k in UINT8_IMAGES + UINT8_MAPS}
    out.update(
        depth=sample["depth"].astype(np.float32),
        landmarks=sample["landmarks"].astype(np.float32),
        landmarks_visible=sample["landmarks_visible"].astype(bool),
        landmarks_unoccluded=sample["landmarks_unoccluded"].astype(bool),
        coeffs=sample["coeffs"].astype(np.float32),
        focal=np.float32(sample["focal"]),
        coverage=np.float32(sample["coverage"]),
        index=np.int64(sample["index"]),
    )
    return out


def decode_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record back in synth's float32 [0, 1] conventions, with ``gray`` recomputed."""

    out = dict(record)
    for key in UINT8_IMAGES + UINT8_MAPS:
        out[key] = np.asarray(record[key], np.float32) / 255.0
    out["gray"] = to_gray(out["occluded"])
    return out


class SyntheticOccludedFaces(tfds.core.GeneratorBasedBuilder):
    """Synthetic occluded faces (occface_jax.data.synth) with full ground truth, one 'train' split.

    The config name (``s<size>_n<count>_seed<seed>``) keeps different sizes and seeds apart in one
    ``data_dir``. ``model`` defaults to ``occface_jax.morphable.load_model()``.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}

    # TFDS finds a builder's source through importlib_resources, which it does not declare as a
    # dependency; the answer is simply this file.
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> Any:
        return epath.Path(__file__)

    def __init__(
        self,
        *,
        image_size: int = 128,
        num_examples: int = 1000,
        seed: int = 0,
        model: Any = None,
        synth_config: SynthConfig | None = None,
        **kwargs: Any,
    ) -> None:
        self._image_size, self._num_examples, self._seed = (
            int(image_size),
            int(num_examples),
            int(seed),
        )
        self._model = model
        self._synth_config = dataclasses.replace(
            synth_config or SynthConfig(), image_size=image_size
        )
        name = f"s{self._image_size}_n{self._num_examples}_seed{self._seed}"
        kwargs.setdefault("file_format", "array_record")
        super().__init__(config=tfds.core.BuilderConfig(name=name), **kwargs)

    def _source(self) -> SyntheticFaces:
        if self._model is None:
            self._model = load_model()
        return SyntheticFaces(self._model, self._synth_config, self._seed, self._num_examples)

    def _info(self) -> tfds.core.DatasetInfo:
        s = self._image_size
        n_coeffs = self._source().layout.size
        image = tfds.features.Tensor(shape=(s, s, 3), dtype=np.uint8, encoding="zlib")
        feature_map = {k: image for k in UINT8_IMAGES}
        feature_map.update(
            {
                k: tfds.features.Tensor(shape=(s, s), dtype=np.uint8, encoding="zlib")
                for k in UINT8_MAPS
            }
        )
        feature_map.update(
            depth=tfds.features.Tensor(shape=(s, s), dtype=np.float32, encoding="zlib"),
            landmarks=tfds.features.Tensor(shape=(68, 2), dtype=np.float32),
            landmarks_visible=tfds.features.Tensor(shape=(68,), dtype=np.bool_),
            landmarks_unoccluded=tfds.features.Tensor(shape=(68,), dtype=np.bool_),
            coeffs=tfds.features.Tensor(shape=(n_coeffs,), dtype=np.float32),
            focal=tfds.features.Scalar(dtype=np.float32),
            coverage=tfds.features.Scalar(dtype=np.float32),
            index=tfds.features.Scalar(dtype=np.int64),
        )
        return tfds.core.DatasetInfo(
            builder=self,
            description="Synthetic occluded faces rendered from a morphable model, with occlusion "
            "masks, contours, landmarks, depth and coefficients (occface_jax.data.synth).",
            features=tfds.features.FeaturesDict(feature_map),
        )

    def _split_generators(self, dl_manager: Any) -> dict[str, Any]:
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        source = self._source()
        for index in range(len(source)):
            yield index, encode_sample(source[index])


class DecodedSource:
    """Random access to a prepared split with every record decoded (:func:`decode_record`)."""

    def __init__(self, data_source: Any) -> None:
        self.data_source = data_source

    def __len__(self) -> int:
        return len(self.data_source)

    def __repr__(self) -> str:
        return f"DecodedSource({len(self)} records)"

    def __getitem__(self, index: int) -> dict[str, Any]:
        return decode_record(self.data_source[int(index)])


def dataset_fingerprint(model: Any, synth_config: SynthConfig, seed: int, num_examples: int) -> str:
    """A short hash naming a prepared dataset: what it was generated from (model arrays, sampling
    settings, seed, size), so a changed setting never reads a stale dataset."""
    digest = hashlib.sha1()
    for array in (model.mean_shape, model.triangles, model.id_basis[:, :3]):
        digest.update(np.ascontiguousarray(np.asarray(array)).tobytes())
    digest.update(repr((synth_config, int(seed), int(num_examples))).encode())
    return digest.hexdigest()[:12]


def prepared_source(
    model: Any,
    synth_config: SynthConfig,
    seed: int,
    num_examples: int,
    data_dir: Any = None,
) -> DecodedSource:
    """``num_examples`` synthetic samples generated once (progress bar; several minutes for
    thousands on a CPU) into ``data_dir`` (default: the cache's ``datasets/`` folder, named by
    :func:`dataset_fingerprint`) and read back by index, decoded. Later calls reuse the files."""
    root = Path(data_dir) if data_dir is not None else cache_dir() / "datasets"
    name = f"synthetic-{dataset_fingerprint(model, synth_config, seed, num_examples)}"
    builder = SyntheticOccludedFaces(
        data_dir=str(root / name),
        image_size=synth_config.image_size,
        num_examples=num_examples,
        seed=seed,
        model=model,
        synth_config=synth_config,
    )
    builder.download_and_prepare()
    return DecodedSource(builder.as_data_source("train"))
