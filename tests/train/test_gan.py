"""The task contract on a two-model adversarial task: a 1-D GAN (generator: noise -> scalar,
discriminator: scalar -> logit) must move its generator's outputs from about 0 to the data's N(3, 0.5);
the same GAN wired wrong (generator phase updating the discriminator, or the generator's sign
flipped) must not. Also: BatchNorm statistics follow the train / eval mode, 8 devices = 1 device."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from occface_jax.train import Phase, Task, optimizer_from_config, restore_models, train

DATA_MEAN, DATA_STD = 3.0, 0.5


class Points:
    """Records {"x": (1,)} drawn from N(3, 0.5), deterministic by index."""

    def __init__(self, n: int = 256) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng(index)
        return {"x": rng.normal(DATA_MEAN, DATA_STD, (1,)).astype(np.float32)}


class MLP(nnx.Module):
    def __init__(self, hidden: int, out_scale: float, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(1, hidden, rngs=rngs)
        init = nnx.initializers.normal(out_scale)
        self.out = nnx.Linear(hidden, 1, kernel_init=init, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(jnp.tanh(self.hidden(x)))


def build_mlp(section: ml_collections.ConfigDict, rngs: nnx.Rngs) -> MLP:
    return MLP(int(section.hidden), float(section.out_scale), rngs)


def _bce(logits: jax.Array, label: float) -> jax.Array:
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)))


def noise(key: jax.Array, n: int) -> jax.Array:
    return jax.random.normal(key, (n, 1))


class GanTask(Task):
    """Non-saturating GAN: the discriminator's phase, then the generator's, in one step."""

    name = "gan1d"
    models = {"generator": (build_mlp, "generator"), "discriminator": (build_mlp, "discriminator")}
    architecture = ("generator", "discriminator")
    generator_sign = 1.0  # -1: the generator's loss with its sign flipped (wired wrong)
    generator_updates = "generator"  # "discriminator": the generator's phase updates D (wrong)

    def optimizers(self, config):
        steps = int(config.train.steps)
        return {n: optimizer_from_config(config.train.optim[n], steps) for n in self.models}

    def phases(self, config):
        return [
            Phase(self.discriminator_loss, updates="discriminator"),
            Phase(self.generator_loss, updates=self.generator_updates, name="generator"),
        ]

    def discriminator_loss(self, models, frozen, batch, key, config):
        fake = jax.lax.stop_gradient(models["generator"](noise(key, batch["x"].shape[0])))
        d = models["discriminator"]
        real_loss, fake_loss = _bce(d(batch["x"]), 1.0), _bce(d(fake), 0.0)
        return real_loss + fake_loss, {"real": real_loss, "fake": fake_loss}

    def generator_loss(self, models, frozen, batch, key, config):
        fake = models["generator"](noise(key, batch["x"].shape[0]))
        loss = self.generator_sign * _bce(models["discriminator"](fake), 1.0)
        return loss, {"mean": jnp.mean(fake)}

    def evaluate(self, models, frozen, batch, config):
        x = batch["x"]
        fake = models["generator"](noise(jax.random.key(1), x.shape[0]))
        return {"fake": fake[:, 0], "d_real": jax.nn.sigmoid(models["discriminator"](x))[:, 0]}


def gan_config(steps: int = 150, batch_size: int = 32) -> ml_collections.ConfigDict:
    adam = dict(schedule="constant", clip_norm=0.0, b2=0.999)
    return ml_collections.ConfigDict(
        dict(
            generator=dict(hidden=16, out_scale=0.01),
            discriminator=dict(hidden=16, out_scale=0.1),
            train=dict(
                batch_size=batch_size,
                steps=steps,
                seed=0,
                log_every=10,
                eval_every=1000,
                checkpoint_every=1000,
                keep_checkpoints=2,
                optim=dict(
                    generator=dict(lr=2e-2, b1=0.5, **adam),
                    discriminator=dict(lr=1e-2, b1=0.5, **adam),
                ),
            ),
        )
    )


def generated(task, config, workdir) -> np.ndarray:
    models, _ = restore_models(task, config, workdir)
    return np.asarray(models["generator"](noise(jax.random.key(7), 4000)))[:, 0]


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
    from test_gan import GanTask, Points, gan_config
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


def run_with_devices(script: str, tmp_path, devices: int = 8) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter with ``devices`` faked CPU devices (argv: tmp, tests/train)."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env.pop("JAX_PLATFORMS", None)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    path = tmp_path / "script.py"
    path.write_text(script)
    here = os.path.dirname(os.path.abspath(__file__))
    return subprocess.run(
        [sys.executable, str(path), str(tmp_path), here],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_gan_on_eight_devices_equals_one_device(tmp_path):
    proc = run_with_devices(EIGHT, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "worst" in proc.stdout
