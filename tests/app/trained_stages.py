"""Helpers of the tests of app/ (importable through ``tests/app/conftest.py``): stages written as
``occface train`` leaves them (smoke configs, initial weights), a synthetic crop with an occluder,
and the script that runs an export's ``loader.py`` where the project cannot be imported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from occface_jax.config import load_config
from occface_jax.io import checkpoints as ckpt
from occface_jax.models.edge_connect import build_edge_generator
from occface_jax.models.patch_gan import build_patch_discriminator
from occface_jax.models.pix2pixhd import build_global_generator
from occface_jax.models.resnet import build_resnet
from occface_jax.models.unet import build_unet

BUILDERS = {
    "mask": {"unet": (build_unet, "model")},
    "contour": {
        "generator": (build_edge_generator, "generator"),
        "discriminator": (build_patch_discriminator, "discriminator"),
    },
    "synthesis": {
        "generator": (build_global_generator, "generator"),
        "discriminator": (build_patch_discriminator, "discriminator"),
    },
    "regressor": {"resnet": (build_resnet, "model")},
}
GAN_STAGES = ("mask", "contour", "synthesis")  # what de-occlusion needs


def write_stage(root: Path, stage: str, seed: int = 0) -> None:
    """``root/<stage>/`` as ``occface train`` leaves it (smoke config, weights at their init)."""
    config = load_config(stage, "smoke")
    items = {
        # RBG keys: threefry's initialisers compile for seconds per shape on a CPU
        name: nnx.state(builder(config[section], nnx.Rngs(jax.random.key(seed, impl="rbg"))))
        for name, (builder, section) in BUILDERS[stage].items()
    }
    manager = ckpt.manager(root / stage / "checkpoints")
    meta = dict(format=ckpt.FORMAT, stage=stage, step=1, config=ckpt.plain(config))
    ckpt.save(manager, 1, items, {ckpt.META: meta, ckpt.DATA: {}})
    manager.wait_until_finished()
    (root / stage / "config.json").write_text(config.to_json_best_effort())


def crop_and_occluder(size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    crop = np.stack([0.3 + 0.5 * x, 0.4 + 0.2 * y, 0.5 + 0.3 * x * y], -1).astype(np.float32)
    crop += rng.normal(0, 0.02, crop.shape).astype(np.float32)
    occluder = np.zeros((size, size), np.float32)
    occluder[size // 3 : size // 2, size // 4 : 3 * size // 4] = 0.9
    return np.clip(crop, 0, 1), occluder


#: argv: loader.py, export folder, input .npy, output .npz, [stage (default mask)]. Runs the
#: stage on the input, saves its outputs, prints the one-line error of a wrong input shape.
LOADER_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, importlib.util, sys
    import numpy as np

    BLOCKED = ("occface_jax", "flax", "orbax", "optax", "ml_collections", "grain")

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked: {name}")
            return None

    sys.meta_path.insert(0, Block())
    spec = importlib.util.spec_from_file_location("standalone_loader", sys.argv[1])
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    stage = loader.load_exported(sys.argv[2], sys.argv[5] if len(sys.argv) > 5 else "mask")
    out = stage(np.load(sys.argv[3]))
    np.savez(sys.argv[4], *(out if isinstance(out, tuple) else (out,)))
    try:
        stage(np.zeros((1, 8, 8, 3), np.float32))
    except loader.OccfaceError as err:
        print("ERROR", err)
    assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED], "project code imported"
    """
)
