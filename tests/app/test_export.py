"""``occface export``: a smoke-trained N_mask exported (jax.export StableHLO + npz + manifest) and
read back by ``io.exported``: the same probabilities as the in-memory network at any batch size,
the standalone loader in a process that cannot import the project, one-line errors for tampering."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from trained_stages import LOADER_SCRIPT

from occface_jax.app.export import serialise
from occface_jax.app.predictors import STAGE_FUNCTIONS, MaskPredictor, load_stage
from occface_jax.cli import main
from occface_jax.errors import OccfaceError
from occface_jax.io import exported


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Two steps of the smoke mask config (train.loop, random crops and masks as records)."""
    from occface_jax.config import load_config
    from occface_jax.train import get_task, train

    config = load_config("mask", "smoke")
    config.train.steps = 2
    rng = np.random.default_rng(0)
    records = [
        {
            "occluded": rng.uniform(size=(32, 32, 3)).astype(np.float32),
            "mask": (rng.uniform(size=(32, 32)) > 0.7).astype(np.float32),
        }
        for _ in range(8)
    ]
    root = tmp_path_factory.mktemp("runs")
    train(get_task("mask"), config, root / "mask", records, progress=False)
    (root / "mask" / "config.json").is_file() or pytest.fail("training wrote no config.json")
    return root


@pytest.fixture(scope="module")
def export_dir(workdir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    assert main(["export", "--workdir", str(workdir), "--out", str(out)]) == 0
    return out


def _crops(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, size, size, 3)).astype(np.float32)


def test_exported_mask_equals_the_in_memory_network_at_any_batch_size(workdir, export_dir):
    models, config, step = load_stage(workdir, "mask")
    function = STAGE_FUNCTIONS["mask"](models, config)
    stage = exported.load_exported(export_dir, "mask")
    assert stage.manifest["step"] == step == 2
    assert stage.manifest["function"]["platforms"] == ["cpu", "cuda"]
    assert stage.manifest["config"]["model"] == config.model.to_dict()
    assert stage.inputs[0]["shape"] == ["batch", 32, 32, 3] and stage.inputs[0]["range"] == [0, 1]
    for n in (1, 3, 5):  # one symbolic batch dimension serves every size
        crops = _crops(n, seed=n)
        want = np.asarray(function.apply(function.weights, crops))
        got = np.asarray(stage(crops))
        assert got.shape == (n, 32, 32)
        np.testing.assert_allclose(got, want, atol=1e-5)
    # The weights matter: another network's probabilities differ.
    other = {k: v * 0.5 for k, v in function.weights.items()}
    assert not np.allclose(
        np.asarray(function.apply(other, _crops(2))), stage(_crops(2)), atol=1e-3
    )


def test_reconstruct_checkpoints_accepts_an_export_folder(workdir, export_dir):
    crop = np.random.default_rng(3).uniform(size=(224, 224, 3)).astype(np.float32)
    from_run = MaskPredictor.from_checkpoints(workdir, flip_average=True)
    from_export = MaskPredictor.from_checkpoints(export_dir, flip_average=True)
    np.testing.assert_allclose(from_export(crop), from_run(crop), atol=1e-5)


def test_lowering_for_cuda_happens_on_a_cpu_machine(workdir):
    models, config, _ = load_stage(workdir, "mask")
    cuda_only = serialise(STAGE_FUNCTIONS["mask"](models, config), platforms=("cuda",))
    assert cuda_only.platforms == ("cuda",)
    assert "stablehlo" in cuda_only.mlir_module()
    assert str(cuda_only.in_avals[-1].shape[0]) == "batch"


def test_the_standalone_loader_needs_only_jax_and_numpy(workdir, export_dir, tmp_path):
    crops = _crops(4, seed=7)
    np.save(tmp_path / "in.npy", crops)
    script = tmp_path / "run_loader.py"
    script.write_text(LOADER_SCRIPT)
    args = [sys.executable, str(script), str(export_dir / "loader.py"), str(export_dir)]
    args += [str(tmp_path / "in.npy"), str(tmp_path / "out.npz")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "ERROR mask: input crops has shape (1, 8, 8, 3), expected (batch, 32, 32, 3)" in done.stdout
    )
    models, config, _ = load_stage(workdir, "mask")
    function = STAGE_FUNCTIONS["mask"](models, config)
    want = np.asarray(function.apply(function.weights, crops))
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["arr_0"], want, atol=1e-5)


def _copy(export_dir: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(export_dir, tmp_path / "copy")
    return tmp_path / "copy" / "mask"


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_tampered_manifests_are_one_line(export_dir, tmp_path):
    folder = _copy(export_dir, tmp_path)
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    cases = [
        ("{broken", "not JSON"),
        (json.dumps({**manifest, "format": "occface-export/0"}), "expected 'occface-export/1'"),
        (json.dumps({k: v for k, v in manifest.items() if k != "weights"}), "incomplete manifest"),
        (json.dumps({**manifest, "stage": "contour"}), "holds stage 'contour', expected 'mask'"),
    ]
    arrays = manifest["weights"]["arrays"]
    name = sorted(arrays)[0]
    bad = json.loads(json.dumps(manifest))
    bad["weights"]["arrays"][name]["shape"] = [7, *arrays[name]["shape"][1:]]
    cases.append((json.dumps(bad), f"{name} is float32"))
    bad = json.loads(json.dumps(manifest))
    bad["weights"]["sha256"] = "0" * 64
    cases.append((json.dumps(bad), "does not match the manifest's SHA-256"))
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(OccfaceError) as err:
            exported.load_exported(folder.parent, "mask")
        assert message in _one_line(err)


def test_missing_files_and_weights_of_another_shape_are_one_line(export_dir, tmp_path):
    folder = _copy(export_dir, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "weights.npz").rename(folder / "aside.npz")
    with pytest.raises(OccfaceError) as err:
        exported.load_exported(folder)
    assert "weights file missing" in _one_line(err)
    # Weights of another shape, the manifest made consistent with them: the function refuses them.
    with np.load(folder / "aside.npz") as data:
        weights = {k: data[k] for k in data.files}
    name = sorted(weights)[0]
    weights[name] = np.zeros((1, *weights[name].shape), np.float32)
    np.savez(folder / "weights.npz", **weights)
    manifest["weights"]["sha256"] = exported.sha256(folder / "weights.npz")
    manifest["weights"]["arrays"][name]["shape"] = list(weights[name].shape)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OccfaceError) as err:
        exported.load_exported(folder)
    assert f"{name} is float32(1, " in _one_line(err) and "the exported function takes" in str(
        err.value
    )
    # One array fewer, the manifest made consistent again: the function takes one more.
    del weights[name]
    np.savez(folder / "weights.npz", **weights)
    manifest["weights"]["sha256"] = exported.sha256(folder / "weights.npz")
    del manifest["weights"]["arrays"][name]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OccfaceError) as err:
        exported.load_exported(folder)
    assert "the exported function takes" in _one_line(err) and "weights" in str(err.value)
    (folder / "function.jax").unlink()
    with pytest.raises(OccfaceError) as err:
        exported.load_exported(folder)
    assert "function file missing" in _one_line(err)


def test_cli_errors(workdir, tmp_path, capsys):
    assert (
        main(["export", "--workdir", str(workdir), "--out", str(tmp_path), "--stages", "nope"]) == 1
    )
    assert "no export for stage 'nope'; known: mask" in capsys.readouterr().err
    assert main(["export", "--workdir", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "no trained stage to export" in capsys.readouterr().err
    assert not exported.is_export(tmp_path)


def test_the_morphable_model_digest_names_the_models_content(toy_model):
    from occface_jax.app.predictors import morphable_manifest
    from occface_jax.morphable import CoeffLayout

    layout = CoeffLayout.for_model(toy_model)
    first = morphable_manifest(toy_model, layout)
    assert first == morphable_manifest(toy_model.to_numpy(), layout)  # same content, same digest
    assert first["coeff_layout"]["blocks"][0] == ["id", toy_model.n_id]
    changed = toy_model.replace(mean_shape=np.asarray(toy_model.mean_shape) + 1e-3)
    assert morphable_manifest(changed)["sha256"] != first["sha256"]
    json.dumps(first)  # goes into manifest.json as it is
