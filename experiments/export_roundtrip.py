"""`occface export` round trip at a stage's real architecture: export time, file sizes, and the
largest difference between the exported function and the in-memory network.

The network is the mask config's (``--variant`` '' = the default 96 px U-Net, or 'smoke'), trained
2 steps on random crops (only the architecture and the arithmetic matter here, not the accuracy),
exported for cpu and cuda, loaded back with ``io.exported`` and run at several batch sizes.

    python experiments/export_roundtrip.py --out experiments/results/export_roundtrip.md
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from _tables import emit  # experiments/_tables.py

from occface_jax.app.export import export_stages
from occface_jax.app.predictors import STAGE_FUNCTIONS, load_stage
from occface_jax.config import load_config
from occface_jax.io import exported
from occface_jax.train import get_task, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--variants", default=",smoke", help="mask config variants, comma-separated"
    )
    parser.add_argument("--out", help="write the table (markdown) here")
    args = parser.parse_args()
    rows = []
    for variant in args.variants.split(","):
        config = load_config("mask", variant)
        config.train.update(steps=2, eval_every=100, checkpoint_every=2, log_every=1)
        size = int(config.model.input_size)
        rng = np.random.default_rng(0)
        records = [
            {
                "occluded": rng.uniform(size=(size, size, 3)).astype(np.float32),
                "mask": (rng.uniform(size=(size, size)) > 0.7).astype(np.float32),
            }
            for _ in range(int(config.train.batch_size))
        ]
        root = Path(tempfile.mkdtemp())
        train(get_task("mask"), config, root / "runs" / "mask", records, progress=False)
        start = time.perf_counter()
        export_stages(root / "runs", root / "export")
        seconds = time.perf_counter() - start
        folder = root / "export" / "mask"
        models, loaded_config, _ = load_stage(root / "runs", "mask")
        function = STAGE_FUNCTIONS["mask"](models, loaded_config)
        reference = jax.jit(function.apply)
        stage = exported.load_exported(folder)
        diffs = []
        for batch in (1, 4, 16):
            crops = rng.uniform(size=(batch, size, size, 3)).astype(np.float32)
            diffs.append(
                float(np.abs(np.asarray(stage(crops)) - reference(function.weights, crops)).max())
            )
        sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
        params = sum(int(np.prod(v.shape)) for v in function.weights.values())
        rows.append((variant or "default", size, params, seconds, sizes, max(diffs)))
        print(rows[-1], flush=True)
    lines = [
        f"{platform.machine()} CPU, jax {jax.__version__}, {time.strftime('%Y-%m-%d')}; platforms "
        "cpu + cuda; max |exported - in-memory| over batches 1, 4, 16 of random crops.",
        "",
        "| mask config | input | parameters | export (s) | function.jax | weights.npz | max abs diff |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant, size, params, seconds, sizes, diff in rows:
        lines.append(
            f"| {variant} | {size} px | {params} | {seconds:.1f} | {sizes['function.jax'] / 1024:.0f} KiB "
            f"| {sizes['weights.npz'] / 1024:.0f} KiB | {diff:.1e} |"
        )
    emit("Export round trip (N_mask)", lines, args.out)


if __name__ == "__main__":
    main()
