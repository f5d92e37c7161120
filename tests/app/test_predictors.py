"""Trained networks at inference: ``occface train`` writes a checkpoints folder that
``predictors.load_stage`` / ``MaskPredictor`` read back (also one written before the task contract),
with clear errors for bad folders."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from occface_jax.app.predictors import MaskPredictor, load_stage
from occface_jax.cli import main
from occface_jax.errors import OccfaceError


@pytest.fixture(scope="module")
def trained(tmp_path_factory, default_model_path, monkeypatch_module):
    """Two steps of the smoke mask config on synthetic faces, through the command line."""
    monkeypatch_module.setenv("OCCFACE_MODEL", str(default_model_path))
    root = tmp_path_factory.mktemp("runs")
    args = ["train", "mask", "--workdir", str(root), "--config-variant", "smoke", "--quiet"]
    args += ["--set", "data.size=24", "--set", "data.validation_size=8", "--set", "train.steps=2"]
    assert main(args) == 0
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_train_writes_a_checkpoint_that_loads(trained):
    models, config, step = load_stage(trained, "mask")
    model = models["unet"]
    assert step == 2 and config.model.input_size == 32
    assert (trained / "mask" / "metrics.jsonl").is_file()
    predictor = MaskPredictor(model, config.model.input_size)
    crop = np.random.default_rng(0).uniform(size=(224, 224, 3)).astype(np.float32)
    prob = predictor(crop)
    assert prob.shape == (224, 224) and np.all((prob >= 0) & (prob <= 1))
    again = MaskPredictor.from_checkpoints(trained)
    np.testing.assert_allclose(again(crop), prob, atol=1e-6)
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert all(np.isfinite(np.asarray(x)).all() for x in leaves)
    with pytest.raises(ValueError, match="RGB crop"):
        predictor(crop[..., 0])


def test_flip_averaged_masks_are_mirror_symmetric_and_average_the_two_views(trained):
    models, config, _ = load_stage(trained, "mask")
    model, size = models["unet"], config.model.input_size
    plain = MaskPredictor(model, size)
    averaged = MaskPredictor(model, size, flip_average=True)
    crop = np.random.default_rng(1).uniform(size=(size, size, 3)).astype(np.float32)
    mirrored = crop[:, ::-1].copy()
    np.testing.assert_allclose(averaged(mirrored), averaged(crop)[:, ::-1], atol=1e-6)
    expected = 0.5 * (plain(crop) + plain(mirrored)[:, ::-1])
    np.testing.assert_allclose(averaged(crop), expected, atol=1e-6)


def test_a_second_train_call_resumes(trained, capsys):
    args = ["train", "mask", "--workdir", str(trained), "--config-variant", "smoke", "--quiet"]
    args += ["--set", "data.size=24", "--set", "data.validation_size=8", "--set", "train.steps=3"]
    assert main(args) == 0
    assert "to step 3" in capsys.readouterr().out
    assert load_stage(trained, "mask")[2] == 3


def test_bad_folders_and_overrides(tmp_path, capsys):
    with pytest.raises(OccfaceError, match="no trained mask network"):
        load_stage(tmp_path, "mask")
    (tmp_path / "mask").mkdir()
    (tmp_path / "mask" / "config.json").write_text("{not json")
    with pytest.raises(OccfaceError, match="not a readable config"):
        load_stage(tmp_path, "mask")
    code = main(["train", "mask", "--workdir", str(tmp_path), "--set", "train.nope=1"])
    assert code == 1
    assert "unknown config key 'train.nope' (see configs/mask.py)" in capsys.readouterr().err


def test_demo_with_checkpoints_runs_the_mask_network_end_to_end(trained, tmp_path, capsys):
    """`occface demo --checkpoints` (the smoke network, the smallest fit): every output written."""
    pytest.importorskip("dlib", reason="the landmarks extra (dlib-bin) is not installed")
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--checkpoints", str(trained), "--config-variant", "test"]
    assert main([*args, "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [entry["status"] for entry in summary["images"]] == ["ok"]
    printed = capsys.readouterr().out
    for name in ("report.png", "mesh.obj", "mask.png"):
        assert (out / "astronaut_occluded" / name).is_file()
        assert str(out / "astronaut_occluded" / name) in printed
    mask = np.asarray(Image.open(out / "astronaut_occluded" / "mask.png"))
    assert mask.shape[:2] == Image.open(out / "astronaut_occluded.png").size[::-1]


def test_reconstruct_names_a_checkpoints_folder_without_networks(tmp_path, capsys):
    photo = tmp_path / "x.png"  # an existing input: inputs are checked first (a usage error)
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(photo)
    code = main(
        ["reconstruct", str(photo), "--out", str(tmp_path / "o"), "--checkpoints", str(tmp_path)]
    )
    assert code == 2  # a usage error, before any photo
    expected = "no trained stage in it (expected mask/, contour/, synthesis/, regressor/)"
    assert expected in capsys.readouterr().err


def test_a_checkpoint_of_the_old_format_still_loads(tmp_path):
    """Format 1 (before the task contract): items ``model``, ``optimizer``, ``data`` and config.json,
    written here as ``train.loop`` wrote them then. It predicts what its weights predict; resuming it
    is refused in one line."""
    import optax
    import orbax.checkpoint as ocp

    from occface_jax.config import load_config
    from occface_jax.models.unet import build_unet
    from occface_jax.train import get_task, train

    config = load_config("mask", "smoke")
    model = build_unet(config.model, nnx.Rngs(3))
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    manager = ocp.CheckpointManager(
        (tmp_path / "mask" / "checkpoints").absolute(),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
    )
    manager.save(
        5,
        args=ocp.args.Composite(
            model=ocp.args.StandardSave(nnx.state(model)),
            optimizer=ocp.args.StandardSave(nnx.state(optimizer)),
            data=ocp.args.JsonSave({"position": 40}),
        ),
    )
    manager.wait_until_finished()
    (tmp_path / "mask" / "config.json").write_text(config.to_json_best_effort(indent=2))

    models, loaded, step = load_stage(tmp_path, "mask")
    assert step == 5 and loaded.model.norm_groups == config.model.norm_groups
    crop = np.random.default_rng(2).uniform(size=(32, 32, 3)).astype(np.float32)
    expected = MaskPredictor(model, 32)(crop)
    np.testing.assert_allclose(MaskPredictor(models["unet"], 32)(crop), expected, atol=1e-6)
    assert not np.allclose(MaskPredictor(build_unet(config.model, nnx.Rngs(4)), 32)(crop), expected)
    records = [{"occluded": crop, "mask": crop[..., 0]}] * 8
    with pytest.raises(OccfaceError, match="old format"):
        train(get_task("mask"), config, tmp_path / "mask", records, progress=False)


def _regressor_checkpoint(root, bias, model_file=None, kernel_scale=0.0):
    """A regressor stage folder (toy model's layout, head bias = ``bias``) written as the loop
    writes it; with ``model_file`` the toy model is saved there and named by the config."""
    from occface_jax.config import load_config
    from occface_jax.io import checkpoints as ckpt
    from occface_jax.models.resnet import build_resnet
    from occface_jax.morphable import CoeffLayout
    from occface_jax.morphable.synthetic import toy_model

    model = toy_model()
    config = load_config("regressor", "smoke")
    config.model.outputs = CoeffLayout.for_model(model).size
    if model_file is not None:
        from occface_jax.morphable.io import save_model

        save_model(model_file, model)
        config.morphable.path, config.morphable.face_only = str(model_file), False
    net = build_resnet(config.model, nnx.Rngs(0))
    net.head.bias[...] = bias(config.model.outputs)
    if kernel_scale:  # the prediction then depends on the crop, through the whole network
        shape = net.head.kernel.shape
        net.head.kernel[...] = kernel_scale * np.random.default_rng(3).normal(size=shape)
    manager = ckpt.manager(root / "regressor" / "checkpoints")
    meta = dict(format=ckpt.FORMAT, stage="regressor", step=1, config=ckpt.plain(config))
    ckpt.save(manager, 1, {"resnet": nnx.state(net)}, {ckpt.META: meta, ckpt.DATA: {}})
    (root / "regressor" / "config.json").write_text(config.to_json_best_effort())
    return model


def test_the_regressor_predicts_its_layout_within_the_fits_bounds(tmp_path):
    """A stored regressor loads for inference and predicts, for any crop size, its head's output
    split into the model's blocks, blendshape weights clipped into [0, 1] as the fit does; a
    model of another layout is one clear error."""
    from occface_jax.app.predictors import RegressorPredictor
    from occface_jax.fit.fitter import project_constraints
    from occface_jax.morphable import CoeffLayout
    from occface_jax.morphable.synthetic import toy_model

    values = np.linspace(-4.0, 4.0, 200).astype(np.float32)
    model = _regressor_checkpoint(tmp_path, lambda n: values[:n])
    predictor = RegressorPredictor.from_checkpoints(tmp_path, model)
    layout = CoeffLayout.for_model(model)
    expected = layout.split(values[: layout.size])
    crop = np.random.default_rng(0).uniform(0, 1, (224, 224, 3)).astype(np.float32)
    out = predictor(crop)  # the head's kernel is zero: the bias alone
    assert set(out) == set(layout.names)
    for k, v in project_constraints(expected, model.exp_kind).items():
        np.testing.assert_allclose(out[k], v, atol=1e-6, err_msg=k)
    assert np.abs(out["tex"]).max() == pytest.approx(3.0)  # the albedo's bound applied
    small = predictor(crop[:100, :100])  # another crop size goes through the resize
    assert all(np.allclose(small[k], out[k], atol=1e-6) for k in out)
    other = toy_model(n_id=9)
    with pytest.raises(OccfaceError, match="another model"):
        RegressorPredictor.from_checkpoints(tmp_path, other)


def test_an_exported_regressor_predicts_as_the_checkpoint(tmp_path):
    """``occface export`` of a regressor stage (the toy model named in its config): the exported
    function's prediction equals the in-memory network's, and its manifest names the model."""
    import json

    from occface_jax.app.export import export_stages
    from occface_jax.app.predictors import RegressorPredictor

    values = np.linspace(-4.0, 4.0, 200).astype(np.float32)
    model = _regressor_checkpoint(
        tmp_path / "runs", lambda n: values[:n], tmp_path / "toy.npz", kernel_scale=0.5
    )
    export_stages(tmp_path / "runs", tmp_path / "export", ["regressor"], platforms=("cpu",))
    manifest = json.loads((tmp_path / "export" / "regressor" / "manifest.json").read_text())
    assert manifest["morphable_model"]["n_id"] == model.n_id
    crop = np.random.default_rng(1).uniform(0, 1, (150, 150, 3)).astype(np.float32)
    in_memory = RegressorPredictor.from_checkpoints(tmp_path / "runs", model)(crop)
    from_export = RegressorPredictor.from_checkpoints(tmp_path / "export", model)(crop)
    assert set(from_export) == set(in_memory)
    other_crop = RegressorPredictor.from_checkpoints(tmp_path / "export", model)(crop[::-1])
    assert not np.allclose(other_crop["id"], from_export["id"])  # the crop matters
    for key, value in in_memory.items():
        np.testing.assert_allclose(from_export[key], value, atol=1e-6, err_msg=key)
