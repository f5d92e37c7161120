"""A 1-D GAN under the task contract (generator: noise -> scalar, discriminator: scalar -> logit),
data N(3, 0.5); shared by the training tests (a helper module, not a test file)."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from occface_jax.train import Phase, Task, optimizer_from_config, restore_models

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


HERE = os.path.dirname(os.path.abspath(__file__))


def subprocess_env(devices: int | None = None, **extra: str) -> dict[str, str]:
    """The environment of a test's fresh interpreter: this checkout first on the path, ``devices``
    faked CPU devices (None: JAX's default)."""
    env = dict(os.environ, **extra)
    env.pop("JAX_PLATFORMS", None)
    env.pop("XLA_FLAGS", None)
    if devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    root = os.path.dirname(os.path.dirname(HERE))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def run_with_devices(
    script: str, tmp_path, devices: int = 8, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter with ``devices`` faked CPU devices (argv: tmp, tests/train)."""
    path = tmp_path / "script.py"
    path.write_text(script)
    return subprocess.run(
        [sys.executable, str(path), str(tmp_path), HERE],
        env=subprocess_env(devices, **(env or {})),
        capture_output=True,
        text=True,
        timeout=600,
    )
