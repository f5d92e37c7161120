"""Checkpoints: a config that differs from the checkpoint's is refused with the differing keys (also
when the arrays have the same shapes: ``model.norm_groups`` 2 -> 4), before a resume writes anything;
a truncated or corrupted file is one line naming it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occface_jax.app.predictors import load_stage
from occface_jax.config import load_config
from occface_jax.errors import OccfaceError
from occface_jax.io import checkpoints as ckpt
from occface_jax.models.unet import build_unet
from occface_jax.train import get_task, train

SPECS = {"unet": (build_unet, "model")}
RECORDS = [
    {"occluded": np.zeros((32, 32, 3), np.float32), "mask": np.zeros((32, 32), np.float32)}
] * 8


def write_stage(stage_dir, config, step: int = 1) -> None:
    """A mask checkpoint as training writes it (items ``unet``, ``meta``, ``data``; no optimizer),
    without running a step."""
    from flax import nnx

    models = ckpt.build_models(SPECS, config, 0)
    mgr = ckpt.manager(stage_dir / "checkpoints")
    meta = dict(format=ckpt.FORMAT, stage="mask", step=step, config=ckpt.plain(config))
    ckpt.save(mgr, step, {"unet": nnx.state(models["unet"])}, {ckpt.META: meta, ckpt.DATA: {}})
    (stage_dir / "config.json").write_text(config.to_json_best_effort(indent=2))


def test_config_differences_name_the_keys():
    a = {"model": {"norm_groups": 2, "depth": 2, "sizes": (1, 2)}, "train": {"lr": 1.0}}
    b = {"model": {"norm_groups": 4, "depth": 2, "sizes": [1, 2], "new": 1}, "train": {"lr": 2.0}}
    assert ckpt.config_differences(a, b, ["model"]) == [
        "model.new (<absent> -> 1)",
        "model.norm_groups (2 -> 4)",
    ]
    assert ckpt.config_differences(a, a, ["model", "train"]) == []


def test_a_changed_model_config_is_refused_for_inference_and_for_resuming(tmp_path):
    config = load_config("mask", "smoke")
    assert config.model.norm_groups == 2
    write_stage(tmp_path / "mask", config)
    models, loaded, step = load_stage(tmp_path, "mask")
    assert step == 1 and list(models) == ["unet"]

    other = load_config("mask", "smoke")
    other.model.norm_groups = 4  # same array shapes, another network
    written = config.to_json_best_effort(indent=2)
    (tmp_path / "mask" / "config.json").write_text(other.to_json_best_effort(indent=2))
    with pytest.raises(OccfaceError, match=r"model\.norm_groups \(2 -> 4\)") as err:
        load_stage(tmp_path, "mask")
    assert "\n" not in str(err.value)

    (tmp_path / "mask" / "config.json").write_text(written)
    with pytest.raises(OccfaceError, match=r"model\.norm_groups \(2 -> 4\)"):
        train(get_task("mask"), other, tmp_path / "mask", RECORDS, progress=False)
    assert (tmp_path / "mask" / "config.json").read_text() == written  # not overwritten
    assert not (tmp_path / "mask" / "metrics.jsonl").exists()


def _array_file(stage_dir):
    files = [p for p in (stage_dir / "checkpoints" / "1" / "unet").rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)  # the array data


def test_a_truncated_or_corrupted_checkpoint_is_one_line_naming_the_file(tmp_path):
    config = load_config("mask", "smoke")
    write_stage(tmp_path / "mask", config)
    target = _array_file(tmp_path / "mask")
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(OccfaceError, match="truncated") as err:
        load_stage(tmp_path, "mask")
    assert str(target) in str(err.value) and "\n" not in str(err.value)

    target.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(OccfaceError, match="corrupted") as err:
        load_stage(tmp_path, "mask")
    assert str(target) in str(err.value)
    with pytest.raises(OccfaceError, match="corrupted"):  # resuming reads the same way
        train(get_task("mask"), config, tmp_path / "mask", RECORDS, progress=False)

    # without a manifest (format 1) orbax's own failure is still one line naming the checkpoint
    (tmp_path / "mask" / "checkpoints" / "1" / ckpt.MANIFEST).unlink()
    target.write_bytes(data[:10])
    with pytest.raises(OccfaceError, match="cannot be read") as err:
        load_stage(tmp_path, "mask")
    assert str(tmp_path / "mask" / "checkpoints" / "1") in str(err.value)
    assert "\n" not in str(err.value)


def test_a_corrupted_manifest_or_meta_is_named(tmp_path):
    config = load_config("mask", "smoke")
    write_stage(tmp_path / "mask", config)
    manifest = tmp_path / "mask" / "checkpoints" / "1" / ckpt.MANIFEST
    entries = json.loads(manifest.read_text())
    manifest.write_text("{")
    with pytest.raises(OccfaceError, match="corrupted checkpoint manifest"):
        load_stage(tmp_path, "mask")
    manifest.write_text(json.dumps(entries))
    (tmp_path / "mask" / "checkpoints" / "1" / "unet").rename(tmp_path / "elsewhere")
    with pytest.raises(OccfaceError, match="is missing"):
        load_stage(tmp_path, "mask")
