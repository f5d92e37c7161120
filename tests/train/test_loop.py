"""The training loop: exact resume after a stop, sharded step = single-device step, checkpoints that
load for inference, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from flax import nnx

from occface_jax.config import load_config
from occface_jax.errors import OccfaceError
from occface_jax.train import get_task, restore_models, train


class Squares:
    """Records like the data engine's: an image with a bright square and its mask."""

    def __init__(self, n: int = 40, size: int = 32) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng(index)
        image = rng.uniform(0, 0.4, (self.size, self.size, 3)).astype(np.float32)
        mask = np.zeros((self.size, self.size), np.float32)
        y, x = rng.integers(0, self.size - 10, 2)
        image[y : y + 10, x : x + 10] += 0.5
        mask[y : y + 10, x : x + 10] = 1
        return {"occluded": image, "mask": mask}


def smoke_config(steps: int = 6):
    config = load_config("mask", "smoke")
    config.train.update(steps=steps, checkpoint_every=100, eval_every=3, log_every=1)
    return config


def params(workdir, config):
    model, step = restore_models(get_task("mask"), config, workdir)
    return step, [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


def test_a_stopped_run_resumes_exactly(tmp_path):
    config = smoke_config()
    source, val = Squares(), Squares(8)
    straight = train(get_task("mask"), config, tmp_path / "a", source, val, progress=False)
    first = train(get_task("mask"), config, tmp_path / "b", source, val, stop_at=2, progress=False)
    assert first.step == 2
    resumed = train(get_task("mask"), config, tmp_path / "b", source, val, progress=False)
    assert straight.step == resumed.step == 6
    step_a, params_a = params(tmp_path / "a", config)
    step_b, params_b = params(tmp_path / "b", config)
    assert step_a == step_b == 6
    for a, b in zip(params_a, params_b, strict=True):
        np.testing.assert_array_equal(a, b)
    assert straight.metrics["loss"] == resumed.metrics["loss"]
    assert set(straight.evaluation) >= {"iou", "bce", "tp", "fp", "fn"}
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert len([x for x in lines if '"eval"' in x]) == 2  # steps 3 and 6
    assert (tmp_path / "b" / "config.json").is_file()


def test_training_lowers_the_loss(tmp_path):
    config = smoke_config(steps=40)
    config.train.update(lr=1e-2, eval_every=40)
    config.model.update(features=8)
    result = train(get_task("mask"), config, tmp_path, Squares(), Squares(16), progress=False)
    log = [x for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    import json

    losses = [json.loads(x)["loss"] for x in log]
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    assert result.evaluation["bce"] < 0.5 * losses[0]  # held-out squares are fitted too


def test_errors(tmp_path):
    config = smoke_config()
    config.train.batch_size = 3
    if jax.device_count() > 1:
        with pytest.raises(OccfaceError, match="not divisible"):
            train(get_task("mask"), config, tmp_path / "x", Squares(), progress=False)
    with pytest.raises(OccfaceError, match="no checkpoint"):
        restore_models(get_task("mask"), smoke_config(), tmp_path / "empty")
    train(get_task("mask"), smoke_config(2), tmp_path / "run", Squares(), progress=False)
    other = smoke_config()
    other.model.features = 6
    with pytest.raises(OccfaceError, match="does not fit"):
        restore_models(get_task("mask"), other, tmp_path / "run")
    with pytest.raises(OccfaceError, match="does not fit"):  # resuming with another model
        train(get_task("mask"), other, tmp_path / "run", Squares(), progress=False)


SHARDED = textwrap.dedent(
    """
    import sys, numpy as np, jax
    from flax import nnx
    sys.path.insert(0, sys.argv[2])
    from test_loop import Squares, smoke_config
    from occface_jax.train import get_task, restore_models, train
    assert jax.device_count() == 8, jax.devices()
    out = {}
    for name, devices in (("one", jax.devices()[:1]), ("eight", jax.devices())):
        config = smoke_config(steps=3)
        train(get_task("mask"), config, sys.argv[1] + "/" + name, Squares(), devices=devices,
              progress=False)
        model, _ = restore_models(get_task("mask"), config, sys.argv[1] + "/" + name)
        out[name] = [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(out["one"], out["eight"]))
    scale = max(float(np.max(np.abs(a))) for a in out["one"])
    print("worst", worst, "scale", scale)
    assert worst < 1e-4 * scale, worst
    """
)


def test_eight_device_step_equals_one_device(tmp_path):
    """On 8 faked CPU devices (batch split 1 per device) the trained weights equal a 1-device run."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    env.pop("JAX_PLATFORMS", None)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    script = tmp_path / "sharded.py"
    script.write_text(SHARDED)
    here = os.path.dirname(__file__)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path), here],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "worst" in proc.stdout
