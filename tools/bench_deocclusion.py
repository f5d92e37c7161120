"""Training speed of the de-occlusion GANs (N_cont ``contour``, N_syn ``synthesis``): seconds per
step and images per second of the real training step (both phases, through ``train.loop.train``,
on random records of the stage's size), per config variant, after compiling.

The CPU configs run at their own batch; the paper's sizes (256 px N_cont, 512 px N_syn, 64
channels) at ``--paper-batch`` images (their configs' batches of 10 and 12 take minutes per step
on a CPU), so compare images/s. On a machine with several devices ``--devices 1,N`` gives the
1 -> N scaling at the same per-device batch.

    python tools/bench_deocclusion.py [--steps 3] [--variants ,paper] [--devices 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from occface_jax.config import load_config
from occface_jax.train import get_task, train


class RandomRecords:
    """Inpainting records of side ``size`` (the keys ``train.tasks.inpainting`` batches)."""

    def __init__(self, size: int, n: int = 64) -> None:
        self.size, self.n = size, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng(index)
        s = self.size
        image = rng.uniform(size=(s, s, 3)).astype(np.float32)
        mask = np.zeros((s, s), np.float32)
        mask[s // 3 : 2 * s // 3, s // 4 : 3 * s // 4] = 1
        gray = image.mean(-1)
        return {
            "image": image,
            "clean": image,
            "mask": mask,
            "gray": gray,
            "gray_clean": gray,
            "contour": (rng.uniform(size=(s, s)) > 0.9).astype(np.float32),
        }


def measure(stage: str, variant: str, batch: int | None, steps: int, devices: int) -> dict:
    config = load_config(stage, variant)
    if batch is not None:
        config.train.batch_size = batch * devices
    config.train.update(
        steps=steps + 1, log_every=1, eval_every=10**9, checkpoint_every=10**9, images=0, workers=0
    )
    size = int(config.generator.input_size)
    with tempfile.TemporaryDirectory() as workdir:
        train(
            get_task(stage),
            config,
            workdir,
            RandomRecords(size, max(64, 2 * int(config.train.batch_size))),
            devices=jax.devices()[:devices],
            progress=False,
        )
        lines = [json.loads(x) for x in (Path(workdir) / "metrics.jsonl").read_text().splitlines()]
    # Elapsed seconds at each logged step: step 1 includes compiling, the rest are steps alone.
    elapsed = [x["seconds"] for x in lines if "eval" not in x]
    per_step = (elapsed[-1] - elapsed[0]) / steps
    images = int(config.train.batch_size)
    return dict(size=size, batch=images, seconds=per_step, images_per_second=images / per_step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps after compiling")
    parser.add_argument("--variants", default=",paper", help="config variants ('' = CPU)")
    parser.add_argument("--paper-batch", type=int, default=1, help="images per device, paper")
    parser.add_argument("--devices", default="1", help="device counts, e.g. 1,8")
    args = parser.parse_args()
    print(
        f"De-occlusion GAN training steps; {platform.machine()}, {jax.devices()[0].device_kind} "
        f"x {jax.device_count()}, jax {jax.__version__}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print("\n| stage | config | side | devices | batch | s / step | images / s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for variant in args.variants.split(","):
        for stage in ("contour", "synthesis"):
            for devices in (int(d) for d in args.devices.split(",")):
                batch = args.paper_batch if variant == "paper" else None
                r = measure(stage, variant, batch, args.steps, devices)
                print(
                    f"| {stage} | {variant or 'CPU'} | {r['size']} | {devices} | {r['batch']} | "
                    f"{r['seconds']:.2f} | {r['images_per_second']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
