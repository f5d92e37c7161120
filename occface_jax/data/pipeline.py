"""grain pipelines over any random-access source of this package (synthetic faces, occluded photos,
real-format loaders): deterministic by index, sharded by process, bad records skipped and counted.

Two shapes, same semantics:
- :func:`map_dataset` / :func:`iter_batches`: ``grain.MapDataset`` (slice-sharded, shuffled by seed),
  for notebooks and single-host runs.
- :func:`data_loader`: ``grain.DataLoader`` with an ``IndexSampler`` and ``ShardOptions`` (one shard per
  process, e.g. ``grain.sharding.ShardByJaxProcess()``), worker processes and checkpointable state.

Records that raise a record error come back as ``None`` from :class:`SafeSource` and are filtered out;
every skip lands in a :class:`~occface_jax.data.records.SkipLog` (pass a directory to collect the skips
of worker processes too) for the report at the end.
"""

from __future__ import annotations

from typing import Any

import grain
import numpy as np

from occface_jax.data.augment import OccludedPhotos
from occface_jax.data.celebamask import CelebAMaskHQ
from occface_jax.data.folder import ImageFolder
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.data.records import RECORD_ERRORS, SkipLog
from occface_jax.data.synth import SynthConfig, SyntheticFaces
from occface_jax.morphable import load_model


def _ensure_absl_flags() -> None:
    """grain's worker processes read absl flags; outside an absl app they are never parsed."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def source_repr(source: Any) -> str:
    """A repr that is the same in every process (grain checks it when restoring a loader's state)."""
    if type(source).__repr__ is not object.__repr__:
        return repr(source)
    return f"{type(source).__name__}(len={len(source)})"


class SafeSource:
    """Record ``indices[i]`` of ``source`` (all records by default), or ``None`` (logged in
    ``skip_log``) when that record is bad."""

    def __init__(
        self, source: Any, skip_log: SkipLog | None = None, indices: range | None = None
    ) -> None:
        self.source = source
        self.skip_log = skip_log if skip_log is not None else SkipLog()
        self.indices = range(len(source)) if indices is None else indices

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"SafeSource({source_repr(self.source)}, {self.indices})"

    def __getitem__(self, index: int) -> Any:
        key = self.indices[int(index)]
        try:
            return self.source[key]
        except RECORD_ERRORS as err:
            self.skip_log.record(
                f"{source_repr(self.source)}[{key}]", f"{type(err).__name__}: {err}"
            )
            return None


class DropSkipped(grain.transforms.Filter):
    """Drops the ``None`` that :class:`SafeSource` returns for a skipped record."""

    def filter(self, element: Any) -> bool:
        return element is not None


def map_dataset(
    source: Any,
    seed: int | None = 0,
    shard_index: int = 0,
    shard_count: int = 1,
    skip_log: SkipLog | None = None,
) -> grain.MapDataset:
    """A ``MapDataset`` over shard ``shard_index`` of ``shard_count`` (interleaved slices, so shards are
    disjoint and together complete), shuffled with ``seed`` (None keeps index order), bad records
    filtered (``ds[i]`` is None for those; iterating skips them)."""
    ds = grain.MapDataset.source(SafeSource(source, skip_log))
    ds = ds[shard_index::shard_count]
    if seed is not None:
        ds = ds.shuffle(seed=seed)
    return ds.filter(lambda x: x is not None)


def read_options(batch_size: int, num_threads: int = 1) -> grain.ReadOptions:
    """grain read options sized for CPU-heavy samples: grain's defaults (16 threads, 500 prefetched
    records per process) would render hundreds of samples ahead and hold gigabytes."""
    return grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=max(2 * batch_size, 2))


def iter_batches(
    ds: grain.MapDataset,
    batch_size: int,
    num_workers: int = 0,
    drop_remainder: bool = True,
    num_threads: int = 1,
) -> grain.IterDataset:
    """Batches (dicts of stacked numpy arrays) of ``ds``, read by ``num_workers`` processes (each
    with ``num_threads`` reader threads; 0 workers reads in this process)."""
    it = ds.to_iter_dataset(read_options(batch_size, num_threads))
    it = it.batch(batch_size, drop_remainder=drop_remainder)
    if num_workers > 0:
        _ensure_absl_flags()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return it


def data_loader(
    source: Any,
    batch_size: int,
    shard_options: grain.sharding.ShardOptions | None = None,
    seed: int = 0,
    shuffle: bool = True,
    num_epochs: int | None = 1,
    worker_count: int = 0,
    skip_log: SkipLog | None = None,
    drop_remainder: bool = True,
    num_threads: int = 1,
) -> grain.DataLoader:
    """A ``grain.DataLoader`` yielding batches of ``source`` records for one shard.

    ``shard_options`` defaults to no sharding; use ``grain.sharding.ShardByJaxProcess()`` on multi-host
    runs. Shard k of n reads records k, k + n, ... (all of them unless ``drop_remainder``, which gives
    every shard the same count). ``num_epochs=None`` repeats forever. Its iterator's ``get_state``/``set_state`` resume it.
    """
    if worker_count > 0:
        _ensure_absl_flags()
    # Shard by interleaved indices here rather than in the IndexSampler: grain 0.2's IndexSampler gives
    # every shard floor(n / count) records even with drop_remainder=False, losing up to count - 1.
    shard = shard_options or grain.sharding.NoSharding()
    indices = range(len(source))
    if shard.drop_remainder:
        indices = indices[: len(indices) - len(indices) % shard.shard_count]
    safe = SafeSource(source, skip_log, indices[shard.shard_index :: shard.shard_count])
    sampler = grain.samplers.IndexSampler(
        num_records=len(safe),
        shard_options=grain.sharding.NoSharding(),
        shuffle=shuffle,
        num_epochs=num_epochs,
        seed=seed,
    )
    return grain.DataLoader(
        data_source=safe,
        sampler=sampler,
        operations=[
            DropSkipped(),
            grain.transforms.Batch(batch_size, drop_remainder=drop_remainder),
        ],
        worker_count=worker_count,
        read_options=read_options(batch_size, num_threads),
    )


def to_numpy(batch: Any) -> Any:
    """A batch with grain's shared-memory arrays turned into plain numpy arrays (copies)."""
    if isinstance(batch, dict):
        return {k: to_numpy(v) for k, v in batch.items()}
    return np.array(batch)


def occlusion_config(config: Any) -> Any:
    """The :class:`~occface_jax.data.occluders.OcclusionConfig` of a data config's ``occlusion`` block."""
    occ = config.occlusion
    return OcclusionConfig(
        kinds=tuple(occ.kinds),
        count=tuple(occ.count),
        coverage=tuple(occ.coverage),
        p_clean=float(occ.p_clean),
    )


def synth_config(config: Any) -> Any:
    """The :class:`~occface_jax.data.synth.SynthConfig` a data config (``configs/data.py``) describes."""
    return SynthConfig(
        image_size=int(config.image_size),
        max_angles_deg=tuple(config.synth.max_angles_deg),
        exp_active=tuple(config.synth.exp_active),
        p_photo_background=float(config.synth.p_photo_background),
        occlusion=occlusion_config(config),
    )


def source_from_config(config: Any, model: Any = None) -> Any:
    """The random-access source a data config describes (``configs/data.py``).

    ``synthetic``: :class:`~occface_jax.data.synth.SyntheticFaces` of ``model`` (default model when
    None), rendered on demand; ``synthetic_cached``: the same samples (``config.size`` of them)
    generated once into an array_record dataset under the cache (see
    :func:`~occface_jax.data.tfds_synthetic.prepared_source`) and read back; ``photos``: occluders
    over :class:`~occface_jax.data.folder.ImageFolder` ``root``; ``celebamask``: occluders over
    CelebAMask-HQ ``root`` (its parsed face region as the face).
    """
    size = int(config.image_size)
    if config.source in ("synthetic", "synthetic_cached"):
        if model is None:
            model = load_model()
        if config.source == "synthetic_cached":
            # tensorflow_datasets (~1 s to import) only for the cached source
            from occface_jax.data.tfds_synthetic import prepared_source

            return prepared_source(model, synth_config(config), int(config.seed), int(config.size))
        return SyntheticFaces(
            model, synth_config(config), seed=int(config.seed), size=int(config.size)
        )
    occlusion = occlusion_config(config)
    if config.source == "photos":
        return OccludedPhotos(
            ImageFolder(config.root, image_size=(size, size)), config.seed, occlusion
        )
    if config.source == "celebamask":
        return OccludedPhotos(CelebAMaskHQ(config.root, image_size=size), config.seed, occlusion)
    raise ValueError(
        "data source must be 'synthetic', 'synthetic_cached', 'photos' or 'celebamask', got "
        f"{config.source!r}"
    )


class Subset:
    """Records ``indices`` of ``source`` (a range or sequence), random access, picklable."""

    def __init__(self, source: Any, indices: Any) -> None:
        self.source, self.indices = source, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"Subset({source_repr(self.source)}, {len(self)} records)"

    def __getitem__(self, index: int) -> Any:
        return self.source[self.indices[int(index)]]


def split_validation(source: Any, validation_size: int) -> tuple[Any, Any]:
    """(training, validation) views of ``source``: its last ``validation_size`` records held out."""
    n = len(source)
    if not 0 <= validation_size < n:
        raise ValueError(f"validation size {validation_size} must be in [0, {n}) records")
    return Subset(source, range(n - validation_size)), Subset(source, range(n - validation_size, n))
