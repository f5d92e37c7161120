"""The task contract on a two-model adversarial task: the 1-D GAN of ``gan_task`` must move its
generator's outputs from about 0 to the data's N(3, 0.5); the same GAN wired wrong (generator phase
updating the discriminator, or the generator's sign flipped) must not. Also: BatchNorm statistics
follow the train / eval mode, 8 devices = 1 device."""

from __future__ import annotations

import json
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from gan_task import DATA_MEAN, DATA_STD, GanTask, Points, gan_config, generated, run_with_devices

from occface_jax.train import Phase, Task, restore_models, train


def test_the_gan_moves_its_generator_to_the_data(tmp_path):
    config = gan_config()
    task = GanTask()
    start = gan_config(steps=1)
    train(task, start, tmp_path / "one", Points(), progress=False)
    assert abs(generated(task, start, tmp_path / "one").mean()) < 0.5  # starts near 0
    result = train(task, config, tmp_path / "gan", Points(), Points(40), progress=False)
    samples = generated(task, config, tmp_path / "gan")
    assert abs(samples.mean() - DATA_MEAN) < 0.5, samples.mean()
    assert samples.std() < 3 * DATA_STD
    assert {"discriminator/loss", "generator/loss", "lr/generator", "lr/discriminator"} <= set(
        result.metrics
    )
    assert result.metrics["lr/discriminator"] == np.float32(1e-2)
    assert abs(result.evaluation["fake"] - DATA_MEAN) < 0.5


def test_a_gan_wired_wrong_does_not_reach_the_data(tmp_path):
    """The check above fails for the GAN with its phases wired wrong."""
    config = gan_config()
    for i, (updates, sign) in enumerate((("discriminator", 1.0), ("generator", -1.0))):
        task = GanTask()
        task.generator_updates, task.generator_sign = updates, sign
        train(task, config, tmp_path / str(i), Points(), progress=False)
        samples = generated(task, config, tmp_path / str(i))
        assert abs(samples.mean() - DATA_MEAN) > 1.5, (updates, sign, samples.mean())


class NormTask(Task):
    """Linear -> BatchNorm: trains its batch statistics; evaluates with the running ones."""

    name = "norm"
    models = {
        "net": (
            lambda section, rngs: nnx.Sequential(
                nnx.Linear(1, 1, rngs=rngs), nnx.BatchNorm(1, momentum=0.5, rngs=rngs)
            ),
            "model",
        )
    }

    def phases(self, config):
        return [Phase(lambda m, f, b, k, c: (jnp.mean(m["net"](b["x"]) ** 2), {}), "net")]

    def evaluate(self, models, frozen, batch, config):
        return {"y": models["net"](batch["x"])[:, 0]}


def test_batch_statistics_train_and_evaluate_in_their_modes(tmp_path):
    config = gan_config(steps=5, batch_size=16)
    config.model = {}
    config.train.update(lr=1e-3, schedule="constant", eval_batch_size=4)
    result = train(NormTask(), config, tmp_path, Points(64), Points(4), progress=False)
    models, _ = restore_models(NormTask(), config, tmp_path)
    linear, norm = models["net"].layers
    mean = float(norm.mean[...][0])
    assert abs(mean) > 0.5  # running mean moved from 0 during training (data mean 3 x weight)
    x = np.stack([Points(4)[i]["x"] for i in range(4)])
    h = x * np.asarray(linear.kernel[...]) + np.asarray(linear.bias[...])
    y = (h - mean) / np.sqrt(np.asarray(norm.var[...]) + norm.epsilon)
    y = y * np.asarray(norm.scale[...]) + np.asarray(norm.bias[...])
    np.testing.assert_allclose(result.evaluation["y"], y.mean(), rtol=1e-4, atol=1e-5)


EIGHT = textwrap.dedent(
    """
    import sys, numpy as np, jax
    from flax import nnx
    sys.path.insert(0, sys.argv[2])
    from gan_task import GanTask, Points, gan_config
    from occface_jax.train import restore_models, train
    assert jax.device_count() == 8, jax.devices()
    out, losses = {}, {}
    for name, devices in (("one", jax.devices()[:1]), ("eight", jax.devices())):
        config = gan_config(steps=10)
        r = train(GanTask(), config, sys.argv[1] + "/" + name, Points(), Points(20),
                  devices=devices, progress=False)
        models, _ = restore_models(GanTask(), config, sys.argv[1] + "/" + name)
        out[name] = [np.asarray(x) for x in jax.tree.leaves(nnx.state(models, nnx.Param))]
        losses[name] = r.metrics["generator/loss"], r.metrics["discriminator/loss"], r.evaluation
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(out["one"], out["eight"]))
    print("worst", worst, losses)
    assert worst < 1e-5, worst
    np.testing.assert_allclose(losses["one"][:2], losses["eight"][:2], rtol=1e-5)
    for k, v in losses["one"][2].items():
        np.testing.assert_allclose(v, losses["eight"][2][k], rtol=1e-5, atol=1e-6)
    """
)


def test_the_gan_on_eight_devices_equals_one_device(tmp_path):
    proc = run_with_devices(EIGHT, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "worst" in proc.stdout


def test_logged_losses_are_averages_over_the_log_interval(tmp_path):
    each, averaged = gan_config(steps=4), gan_config(steps=4)
    each.train.log_every, averaged.train.log_every = 1, 4
    train(GanTask(), each, tmp_path / "each", Points(), progress=False)
    train(GanTask(), averaged, tmp_path / "avg", Points(), progress=False)

    def read(d):
        return [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]

    steps, (line,) = read("each"), read("avg")
    assert line["step"] == 4
    for key in (
        "generator/loss",
        "discriminator/real",
        "grad_norm/generator",
        "param_norm/generator",
    ):
        values = [x[key] for x in steps]
        assert values[0] != values[-1]
        assert line[key] == pytest.approx(np.mean(values), rel=1e-5), key
    assert line["lr/generator"] == steps[-1]["lr/generator"]
