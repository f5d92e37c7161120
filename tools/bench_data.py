"""Throughput of the data engine in samples per second: synthetic faces (render + occluders +
contours) and occlusion-augmented photos, at 128 and 224 px, read in-process (0 workers) or by 2 grain
worker processes; one table on stdout.

    python tools/bench_data.py [--samples 48] [--batch 4]

Warm-up (the renderer's jit compile, in every worker process) is excluded: the clock starts when the
first ``--warmup`` batches have arrived.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from occface_jax.data.pipeline import iter_batches, map_dataset  # noqa: E402


def measure(source, batch: int, samples: int, workers: int, warmup: int) -> float:
    """Samples per second over ``samples`` samples after ``warmup`` batches."""
    ds = map_dataset(source, seed=0).repeat()  # small photo folders wrap around
    it = iter(iter_batches(ds, batch, num_workers=workers))
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(samples // batch):
        next(it)
    return (samples // batch) * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()

    from occface_jax.data.augment import OccludedPhotos
    from occface_jax.data.folder import ImageFolder
    from occface_jax.data.synth import SynthConfig, SyntheticFaces
    from occface_jax.morphable import load_model
    from occface_jax.paths import shared_dir

    model = load_model()
    shared = shared_dir()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, JAX on CPU")
    print("| source | size | workers | samples/s |")
    print("| --- | --- | --- | --- |")
    for size in args.sizes:
        for workers in args.workers:
            source = SyntheticFaces(model, SynthConfig(image_size=size), seed=0)
            rate = measure(source, args.batch, args.samples, workers, args.warmup)
            print(f"| synthetic | {size} | {workers} | {rate:.1f} |", flush=True)
        if shared is not None:
            folder = ImageFolder(shared / "faces", image_size=(size, size))
            for workers in args.workers:
                rate = measure(
                    OccludedPhotos(folder), args.batch, args.samples, workers, args.warmup
                )
                print(f"| photos + occluders | {size} | {workers} | {rate:.1f} |", flush=True)


if __name__ == "__main__":
    main()
