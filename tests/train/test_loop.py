"""The training loop: exact resume after a stop, sharded step = single-device step, checkpoints that
load for inference, and clear errors."""

from __future__ import annotations

import json
import signal
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from gan_task import GanTask, Points, gan_config, run_with_devices

from occface_jax.config import load_config
from occface_jax.errors import OccfaceError
from occface_jax.train import Phase, Task, get_task, restore_models, train
from occface_jax.train.loop import KILL_AFTER_STEP
from occface_jax.train.tensorboard import read_events


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
    models, step = restore_models(get_task("mask"), config, workdir)
    return step, [np.asarray(x) for x in jax.tree.leaves(nnx.state(models, nnx.Param))]


@pytest.mark.slow(reason="three mask runs, each compiling step, evaluation and images: 40-80 s")
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
    pictures = [e for e in read_events(tmp_path / "b") if "images/predicted_mask" in e["values"]]
    assert [e["step"] for e in pictures] == [3, 6]
    for tag in ("images/image", "images/predicted_mask", "images/true_mask"):
        image = pictures[-1]["values"][tag]
        assert (image["height"], image["width"]) == (32, 4 * 32)  # 4 examples side by side
        assert image["png"].startswith(b"\x89PNG")


def test_training_lowers_the_loss(tmp_path):
    config = smoke_config(steps=40)
    config.train.update(lr=1e-2, eval_every=40)
    config.model.update(features=8)
    result = train(get_task("mask"), config, tmp_path, Squares(), Squares(16), progress=False)
    log = [x for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]

    losses = [json.loads(x)["loss"] for x in log]
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    assert result.evaluation["bce"] < 0.5 * losses[0]  # held-out squares are fitted too


def test_errors_come_before_anything_is_written(tmp_path):
    config = smoke_config()
    config.train.batch_size = 3
    if jax.device_count() > 1:
        with pytest.raises(OccfaceError, match="not divisible"):
            train(get_task("mask"), config, tmp_path / "x", Squares(), progress=False)
        assert not (tmp_path / "x").exists()
    with pytest.raises(OccfaceError, match="not divisible by 2 devices"):
        train(get_task("mask"), config, tmp_path / "x", Squares(), devices=[jax.devices()[0]] * 2)
    assert not (tmp_path / "x").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(OccfaceError, match="is a file, not a folder"):
        train(get_task("mask"), smoke_config(), tmp_path / "file", Squares(), progress=False)
    with pytest.raises(OccfaceError, match="no checkpoint"):
        restore_models(get_task("mask"), smoke_config(), tmp_path / "empty")


KILLED = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from gan_task import GanTask, Points
    from test_loop import kill_config
    from occface_jax.train import train
    train(GanTask(), kill_config(), sys.argv[1] + "/run", Points(), Points(8), progress=False)
    """
)


def kill_config():
    config = gan_config(steps=12)
    config.train.update(log_every=1, eval_every=5, checkpoint_every=4)
    return config


def test_a_killed_run_resumes_exactly_and_logs_each_step_once(tmp_path):
    """SIGKILL after step 6 (last checkpoint: 4), resume: the weights of a straight run, steps 5 and
    6 logged once, the elapsed time going on."""
    proc = run_with_devices(KILLED, tmp_path, devices=1, env={KILL_AFTER_STEP: "6"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    run = tmp_path / "run"
    before = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in before if "eval" not in x] == [1, 2, 3, 4, 5, 6]
    resumed = train(GanTask(), kill_config(), run, Points(), Points(8), progress=False)
    straight = train(
        GanTask(), kill_config(), tmp_path / "straight", Points(), Points(8), progress=False
    )
    assert resumed.step == straight.step == 12
    a = jax.tree.leaves(nnx.state(restore_models(GanTask(), kill_config(), run)[0], nnx.Param))
    b = jax.tree.leaves(
        nnx.state(restore_models(GanTask(), kill_config(), tmp_path / "straight")[0], nnx.Param)
    )
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if "eval" not in x]
    assert steps == list(range(1, 13))
    assert [x["step"] for x in lines if "eval" in x] == [5, 10, 12]
    seconds = [x["seconds"] for x in lines if "eval" not in x]
    assert seconds == sorted(seconds)  # the elapsed time continues across the resume
    assert straight.metrics == {
        **resumed.metrics,
        "examples_per_second": straight.metrics["examples_per_second"],
    }
    events = [e for e in read_events(run) if e["values"] and "generator/loss" in e["values"]]
    assert [e["step"] for e in events] == list(range(1, 13))


SHARDED = textwrap.dedent(
    """
    import sys, numpy as np, jax
    from flax import nnx
    sys.path.insert(0, sys.argv[2])
    from test_loop import Squares, smoke_config
    from occface_jax.train import get_task, restore_models, train
    assert jax.device_count() == 8, jax.devices()
    out, logged = {}, {}
    for name, devices in (("one", jax.devices()[:1]), ("eight", jax.devices())):
        config = smoke_config(steps=3)
        r = train(get_task("mask"), config, sys.argv[1] + "/" + name, Squares(), Squares(12),
                  devices=devices, progress=False)
        models, _ = restore_models(get_task("mask"), config, sys.argv[1] + "/" + name)
        out[name] = [np.asarray(x) for x in jax.tree.leaves(nnx.state(models, nnx.Param))]
        logged[name] = {k: v for k, v in r.metrics.items() if k != "examples_per_second"}
        logged[name].update({"eval/" + k: v for k, v in r.evaluation.items()})
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(out["one"], out["eight"]))
    scale = max(float(np.max(np.abs(a))) for a in out["one"])
    print("worst", worst, "scale", scale, logged)
    assert worst < 1e-4 * scale, worst
    assert set(logged["one"]) == set(logged["eight"]) and "loss" in logged["one"]
    for k, v in logged["one"].items():
        np.testing.assert_allclose(logged["eight"][k], v, rtol=1e-4, atol=1e-5, err_msg=k)
    """
)


def test_eight_device_step_equals_one_device(tmp_path):
    """On 8 faked CPU devices (batch split 1 per device) the trained weights equal a 1-device run."""
    proc = run_with_devices(SHARDED, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "worst" in proc.stdout


class UsesMask(Task):
    """A stage downstream of N_mask: learns one scale on the frozen mask network's output."""

    name = "uses_mask"
    requires = ("mask",)
    models = {"scale": (lambda section, rngs: nnx.Linear(1, 1, rngs=rngs), "model")}

    def phases(self, config):
        return [Phase(self.loss, "scale")]

    def make_batch(self, records, config):
        return {"image": records["occluded"]}

    def loss(self, models, frozen, batch, key, config):
        prob = jax.nn.sigmoid(frozen["mask.unet"](batch["image"]))
        y = models["scale"](prob.reshape(-1, 1))
        frozen_sum = sum(jnp.sum(x) for x in jax.tree.leaves(nnx.state(frozen, nnx.Param)))
        return jnp.mean((y - 1.0) ** 2), {"frozen_sum": frozen_sum}


def test_an_upstream_stage_is_a_frozen_input(tmp_path):
    """``requires=("mask",)``: N_mask comes from WORKDIR/mask/ into every loss, never trained."""
    from occface_jax.io import checkpoints as ckpt
    from occface_jax.models.unet import build_unet

    mask_config = smoke_config()
    unet = build_unet(mask_config.model, nnx.Rngs(5))
    manager = ckpt.manager(tmp_path / "mask" / "checkpoints")
    meta = dict(format=ckpt.FORMAT, stage="mask", step=1, config=ckpt.plain(mask_config))
    ckpt.save(manager, 1, {"unet": nnx.state(unet)}, {ckpt.META: meta, ckpt.DATA: {}})
    (tmp_path / "mask" / "config.json").write_text(mask_config.to_json_best_effort())
    expected = float(sum(np.sum(x) for x in jax.tree.leaves(nnx.state(unet, nnx.Param))))

    config = gan_config(steps=4, batch_size=8)
    config.model = {}
    config.train.update(lr=1e-2, schedule="constant", log_every=1)
    train(UsesMask(), config, tmp_path / "uses_mask", Squares(), progress=False)
    lines = [
        json.loads(x) for x in (tmp_path / "uses_mask" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [x["step"] for x in lines] == [1, 2, 3, 4]
    for line in lines:
        assert line["frozen_sum"] == pytest.approx(expected, rel=1e-6)
    assert lines[-1]["loss"] < lines[0]["loss"]  # the scale trains
    assert ckpt.items(ckpt.manager(tmp_path / "uses_mask" / "checkpoints"), 4) == {
        "scale",
        "scale_optimizer",
        "data",
        "meta",
    }
