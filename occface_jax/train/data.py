"""Batches for the loop, the same global batches on any number of processes.

Training: one global shuffled order of the records (grain ``IndexSampler``, seeded); global batch g
is positions ``g*B ... g*B + B - 1`` of it and process p reads rows ``p*L ... p*L + L - 1`` of each
(``L = B / processes``), which is what ``make_array_from_process_local_data`` puts on its devices:
1 process or N, the step sees the same batch. Evaluation: every record once, global batch g split
the same way; the last batch is padded (copies of record 0) and a weight of 0 masks the padding
out of the averages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import grain
import numpy as np

from occface_jax.data.pipeline import DropSkipped, SafeSource, read_options


class LocalRows:
    """A grain sampler: this process's rows of each global batch of ``base``'s order."""

    def __init__(self, base: Any, global_batch: int, local_batch: int, process: int) -> None:
        self.base, self.global_batch, self.local_batch = base, global_batch, local_batch
        self.process = process

    def __len__(self) -> int:
        return len(self.base) // self.global_batch * self.local_batch

    def __repr__(self) -> str:
        # Without the process: all processes are at the same position, so process 0's saved
        # iterator state (the checkpoint's ``data`` item) restores every process's iterator.
        return (
            f"LocalRows({self.base!r}, global_batch={self.global_batch}, local={self.local_batch})"
        )

    def __getitem__(self, index: int) -> Any:
        batch, row = divmod(int(index), self.local_batch)
        position = batch * self.global_batch + self.process * self.local_batch + row
        return dataclasses.replace(self.base[position], index=int(index))


def train_loader(
    source: Any,
    global_batch: int,
    process: int,
    process_count: int,
    seed: int,
    workers: int = 0,
) -> grain.DataLoader:
    """Endless shuffled batches of this process's rows (see the module docstring); the iterator's
    ``get_state`` / ``set_state`` resume it."""
    local = global_batch // process_count
    safe = SafeSource(source)
    base = grain.samplers.IndexSampler(
        num_records=len(safe),
        shard_options=grain.sharding.NoSharding(),
        shuffle=True,
        num_epochs=None,
        seed=seed,
    )
    return grain.DataLoader(
        data_source=safe,
        sampler=LocalRows(base, global_batch, local, process),
        operations=[DropSkipped(), grain.transforms.Batch(local, drop_remainder=True)],
        worker_count=workers,
        shard_options=grain.sharding.NoSharding(),  # LocalRows picks this process's rows
        read_options=read_options(local),
    )


def eval_batches(
    source: Any, global_batch: int, process: int, process_count: int
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """(stacked records, weight (L,) 1 = real 0 = padding) for this process, covering every record
    of ``source`` once over all processes."""
    n = len(source)
    local = global_batch // process_count
    for start in range(0, n, global_batch):
        positions = start + process * local + np.arange(local)
        weight = (positions < n).astype(np.float32)
        rows = [source[int(i) if i < n else 0] for i in positions]
        yield {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}, weight
