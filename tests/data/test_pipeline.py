"""Tests of occface_jax/data/pipeline.py: grain datasets and loaders, sharding, skipping bad records."""

from __future__ import annotations

import multiprocessing

import grain
import numpy as np

from occface_jax.data.augment import OccludedPhotos
from occface_jax.data.folder import ImageFolder
from occface_jax.data.pipeline import data_loader, iter_batches, map_dataset, to_numpy
from occface_jax.data.records import SkipLog


class Numbers:
    """A source whose record i is {'i': i}; records divisible by 5 are 'corrupt'."""

    def __len__(self):
        return 23

    def __getitem__(self, i):
        from occface_jax.data.errors import RecordError

        if i % 5 == 0:
            raise RecordError(f"record {i} is corrupt")
        return {"i": np.int64(i)}


def test_map_dataset_shards_are_disjoint_complete_and_skip_bad_records():
    log = SkipLog()
    seen = []
    for shard in range(3):
        ds = map_dataset(Numbers(), seed=1, shard_index=shard, shard_count=3, skip_log=log)
        seen.append([int(x["i"]) for x in ds])
    flat = sorted(sum(seen, []))
    assert flat == [i for i in range(23) if i % 5 != 0]
    assert len(log) == 5 and "5 record(s) skipped" in log.summary()
    again = [int(x["i"]) for x in map_dataset(Numbers(), seed=1, shard_index=1, shard_count=3)]
    assert again == seen[1]  # deterministic order
    other = [int(x["i"]) for x in map_dataset(Numbers(), seed=2, shard_index=1, shard_count=3)]
    assert sorted(other) == sorted(seen[1]) and other != seen[1]


def test_iter_batches_with_two_workers_equals_in_process(tmp_path):
    log = SkipLog(tmp_path / "skips")
    ds = map_dataset(Numbers(), seed=0, skip_log=log)
    serial = [b["i"].tolist() for b in iter_batches(ds, 4)]
    assert len(log) == 5
    parallel = [to_numpy(b)["i"].tolist() for b in iter_batches(ds, 4, num_workers=2)]
    assert sorted(sum(serial, [])) == sorted(sum(parallel, []))
    assert all(len(b) == 4 for b in serial + parallel)
    assert len(log) == 10  # the workers' skips reach the main process's log too


def _read_shard(root, shard_index, skip_dir, queue):
    source = OccludedPhotos(ImageFolder(root, image_size=(32, 32)), seed=0)
    loader = data_loader(
        source,
        batch_size=2,
        shard_options=grain.sharding.ShardOptions(shard_index, 2, drop_remainder=False),
        seed=7,
        worker_count=0,
        skip_log=SkipLog(skip_dir),
        drop_remainder=False,
    )
    paths = []
    for batch in loader:
        assert batch["occluded"].shape[1:] == (32, 32, 3)
        paths += [str(p) for p in batch["path"]]
    queue.put((shard_index, paths))


def test_two_processes_read_disjoint_complete_shards(face_folder, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_read_shard, args=(face_folder, i, tmp_path / "skips", queue))
        for i in (0, 1)
    ]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    shard0, shard1 = set(results[0]), set(results[1])
    good = {str(p.relative_to(face_folder)) for p in ImageFolder(face_folder).paths} - {
        "broken.jpg"
    }
    assert shard0 and shard1 and not shard0 & shard1
    assert shard0 | shard1 == good
    assert len(results[0]) + len(results[1]) == len(good)  # no duplicates within a shard either
    skipped = SkipLog(tmp_path / "skips").entries()
    assert len(skipped) == 1 and "broken.jpg" in skipped[0]["reason"]


def test_data_loader_resumes_from_its_state():
    loader = data_loader(Numbers(), batch_size=3, seed=4, num_epochs=1)
    it = iter(loader)
    next(it)
    state = it.get_state()
    rest = [b["i"].tolist() for b in it]
    resumed = iter(data_loader(Numbers(), batch_size=3, seed=4, num_epochs=1))
    resumed.set_state(state)
    assert [b["i"].tolist() for b in resumed] == rest


def test_sources_from_the_data_config(face_folder, tmp_path, default_model):
    from occface_jax.config import load_config
    from occface_jax.data.pipeline import source_from_config

    config = load_config("data", "photos")
    config.root = str(face_folder / "sub")
    config.image_size = 48
    config.occlusion.kinds = ("hand",)
    photos = source_from_config(config)
    sample = photos[0]
    assert sample["occluded"].shape == (48, 48, 3) and sample["mask"].sum() > 0
    smoke = load_config("data", "smoke")
    smoke.size = 5
    synthetic = source_from_config(smoke, model=default_model)
    assert len(synthetic) == 5 and synthetic[4]["clean"].shape == (64, 64, 3)


def test_celebamask_with_pasted_occluders_keeps_its_own_eyeglasses(tmp_path, make_celebamask):
    from occface_jax.config import load_config
    from occface_jax.data.pipeline import source_from_config

    make_celebamask(tmp_path, [0])
    config = load_config("data", "celebamask")
    config.root = str(tmp_path)
    config.image_size = 32
    config.occlusion.coverage = (0.05, 0.2)
    sample = source_from_config(config)[0]
    own = sample["labels"] == 3
    assert (sample["mask"][own] == 1).all()  # the dataset's eyeglasses/hat are still occluders
    assert sample["mask"].sum() > own.sum()  # and the pasted occluder adds to them
