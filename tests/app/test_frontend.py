"""The reconstruction front end as one exported function (``predictors.frontend_function``,
``occface export`` -> ``OUT/frontend/``): equal to the separate predictors chained (mask ->
de-occlusion -> regressor) on tiny untrained stages, loadable with jax and numpy only, one-line
errors when a member is missing or was re-exported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from trained_stages import BUILDERS, LOADER_SCRIPT, crop_and_occluder, write_stage

from occface_jax.app.predictors import (
    DeocclusionPredictor,
    MaskPredictor,
    RegressorPredictor,
    deocclude,
    frontend_members,
    stage_apply,
)
from occface_jax.cli import main
from occface_jax.errors import OccfaceError
from occface_jax.faces import edges
from occface_jax.io import exported

SIZE = 64  # the front end's crop side here (224 in the pipeline): 32 px stages, 64 px regressor
OUTPUTS = ["occluder_probability", "hole", "contour_complete", "complete_face", "coefficients"]


@pytest.fixture(scope="module")
def stages_dir(tmp_path_factory) -> Path:
    """Every stage the front end chains, at its smoke config's initial weights."""
    root = tmp_path_factory.mktemp("runs")
    for stage in BUILDERS:
        write_stage(root, stage)
    return root


@pytest.fixture(scope="module")
def export_dir(stages_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    args = ["export", "--workdir", str(stages_dir), "--out", str(out)]
    assert main([*args, "--frontend-size", str(SIZE)]) == 0  # for CPU and CUDA
    return out


def crops(n: int = 3) -> np.ndarray:
    return np.stack([crop_and_occluder(SIZE, seed=s)[0] for s in range(n)])


def test_the_members_are_the_stages_that_chain():
    assert frontend_members(["regressor", "synthesis", "mask", "contour"]) == [
        "mask",
        "contour",
        "synthesis",
        "regressor",
    ]
    assert frontend_members(["contour", "synthesis", "regressor"]) == ["regressor"]  # no hole
    assert frontend_members(["mask", "contour"]) == ["mask"]


def test_the_exported_front_end_equals_the_predictors_chained(
    stages_dir, export_dir, default_model
):
    front = exported.load_exported(export_dir, "frontend")
    manifest = front.manifest
    assert [o["name"] for o in manifest["outputs"]] == OUTPUTS
    assert manifest["inputs"][0]["shape"] == ["batch", SIZE, SIZE, 3]
    assert manifest["function"]["platforms"] == ["cpu", "cuda"]
    assert manifest["size"] == SIZE and manifest["weights"]["file"] is None
    for stage in ("mask", "contour", "synthesis", "regressor"):
        member = manifest["members"][stage]
        assert member["step"] == 1 and member["folder"] == stage
        assert member["config"] == json.loads((stages_dir / stage / "config.json").read_text())
    assert manifest["morphable_model"]["coeff_layout"]["blocks"][0][0] == "id"
    x = crops(3)
    probability, hole, contour, face, coeffs = (np.asarray(o) for o in front(x))
    mask = MaskPredictor.from_checkpoints(stages_dir)
    deoccluder = DeocclusionPredictor.from_checkpoints(stages_dir)
    regressor = RegressorPredictor.from_checkpoints(stages_dir, default_model.face_only())
    for i, crop in enumerate(x):
        p = mask(crop)
        np.testing.assert_allclose(probability[i], p, atol=1e-5)
        done = deoccluder(crop, p)
        np.testing.assert_array_equal(hole[i], done.hole)
        np.testing.assert_allclose(contour[i], done.contour, atol=1e-5)
        np.testing.assert_allclose(face[i], done.image, atol=1e-5)
        want = regressor.layout.join(regressor(done.image))
        np.testing.assert_allclose(coeffs[i], want, atol=1e-5)
    assert 0 < hole.mean() < 1  # something was repainted, something kept
    np.testing.assert_array_equal(face[hole == 0], x[hole == 0])


def test_deocclude_keeps_a_crop_without_a_hole(stages_dir):
    contour, synthesis = (stage_apply(stages_dir, s) for s in ("contour", "synthesis"))
    crop, occluder = crop_and_occluder(SIZE, seed=4)
    batch = jnp.stack([crop, crop]), jnp.stack([occluder, np.zeros_like(occluder)])
    run = jax.jit(deocclude, static_argnums=(0, 2, 6))
    image, edges_s, hole = run(
        contour.apply, contour.weights, synthesis.apply, synthesis.weights, *batch, (32, 32, 1)
    )
    assert np.asarray(hole[0]).any() and not np.asarray(hole[1]).any()
    np.testing.assert_array_equal(np.asarray(image[1]), crop)
    np.testing.assert_array_equal(np.asarray(edges_s[1]), np.asarray(edges.canny_rgb(crop)))
    assert np.abs(np.asarray(image[0]) - crop).max() > 1e-3


def test_the_standalone_loader_runs_the_front_end(export_dir, tmp_path, capsys):
    x = crops(2)
    np.save(tmp_path / "in.npy", x)
    script = tmp_path / "run_loader.py"
    script.write_text(LOADER_SCRIPT)
    args = [sys.executable, str(script), str(export_dir / "loader.py"), str(export_dir)]
    args += [str(tmp_path / "in.npy"), str(tmp_path / "out.npz"), "frontend"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = f"ERROR frontend: input crops has shape (1, 8, 8, 3), expected (batch, {SIZE}"
    assert expected in done.stdout
    got = np.load(tmp_path / "out.npz")
    want = exported.load_exported(export_dir, "frontend")(x)
    assert len(got.files) == len(OUTPUTS)
    for k, w in enumerate(want):
        np.testing.assert_allclose(got[f"arr_{k}"], np.asarray(w), atol=1e-6)
    assert exported.main([str(export_dir / "frontend")]) == 0  # the loader's own listing
    assert "frontend (mask step 1, contour step 1" in capsys.readouterr().out


def _one_line(err: pytest.ExceptionInfo) -> str:
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_missing_or_changed_member_is_one_line(export_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(export_dir, copy)
    (copy / "synthesis" / "weights.npz").rename(tmp_path / "aside.npz")
    with pytest.raises(OccfaceError) as err:
        exported.load_exported(copy, "frontend")
    text = _one_line(err)
    assert text.startswith("frontend member synthesis: ") and "weights file missing" in text
    shutil.rmtree(copy / "synthesis")
    with pytest.raises(OccfaceError) as err:
        exported.load_exported(copy, "frontend")
    assert "frontend member synthesis: " in _one_line(err) and "manifest.json: missing" in str(
        err.value
    )
    # A member re-exported with other weights (its own folder consistent): the front end refuses.
    shutil.copytree(export_dir / "synthesis", copy / "synthesis")
    folder = copy / "mask"
    with np.load(folder / "weights.npz") as data:
        weights = {k: data[k] * 0.5 for k in data.files}
    np.savez(folder / "weights.npz", **weights)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["weights"]["sha256"] = exported.sha256(folder / "weights.npz")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    exported.load_exported(copy, "mask")  # the member alone is fine
    with pytest.raises(OccfaceError) as err:
        exported.load_exported(copy, "frontend")
    assert "frontend member mask: " in _one_line(err) and "other weights" in str(err.value)


def test_no_front_end_for_a_single_stage_or_when_asked(stages_dir, tmp_path):
    out = tmp_path / "one"
    args = ["export", "--workdir", str(stages_dir), "--platforms", "cpu"]
    assert main([*args, "--out", str(out), "--stages", "mask"]) == 0
    assert not (out / "frontend").exists()
    assert main([*args, "--out", str(out), "--stages", "mask,regressor", "--no-frontend"]) == 0
    assert not (out / "frontend").exists() and (out / "regressor" / "manifest.json").is_file()
