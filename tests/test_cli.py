"""The ``occface`` entry point: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from occface_jax.cli import main
from occface_jax.errors import OccfaceError


def test_info_names_the_model(capsys, default_model_path):
    assert main(["info", "--model", str(default_model_path)]) == 0
    out = capsys.readouterr().out
    assert "ict_face_default: 17202 vertices, 34332 triangles" in out
    assert "JAX backend" in out and "jax " in out


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["no-such-command"]) == 2
    assert main(["info", "--bogus"]) == 2


def test_job_failure_is_one_line_exit_1(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("not a model")
    assert main(["info", "--model", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "corrupt or not an npz archive" in err
    assert "Traceback" not in err


def test_console_script_runs_and_debug_shows_traceback(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("x")
    run = subprocess.run(
        [sys.executable, "-m", "occface_jax.cli", "--debug", "info", "--model", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1 and "Traceback" in run.stderr


#: The smallest valid arguments of every subcommand, for parsing only.
MINIMAL_ARGUMENTS = {
    "info": [],
    "fetch-model": [],
    "reconstruct": ["photo.jpg", "--out", "out"],
    "summarize": ["out"],
    "demo": [],
    "train": ["mask"],
    "export": ["--out", "out"],
    "evaluate": ["micc", "--data", "d", "--out", "o"],
}


def test_debug_is_accepted_before_and_after_every_subcommand():
    from occface_jax.cli import COMMANDS, build_parser

    assert set(MINIMAL_ARGUMENTS) == set(COMMANDS)
    parser = build_parser()
    for name, rest in MINIMAL_ARGUMENTS.items():
        assert parser.parse_args([name, *rest]).debug is False, name
        assert parser.parse_args(["--debug", name, *rest]).debug is True, name
        assert parser.parse_args([name, "--debug", *rest]).debug is True, name


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("x")
    with pytest.raises(OccfaceError, match="corrupt or not an npz archive"):
        main(["info", "--debug", "--model", str(bad)])


def test_reconstruct_without_inputs_is_a_usage_error(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no image here")
    cases = {
        str(tmp_path / "missing.jpg"): "missing.jpg: no such file or folder",
        str(empty): "empty: folder holds no images (.jpg",
    }
    for given, expected in cases.items():
        assert main(["reconstruct", given, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("occface reconstruct: error: ") and expected in err, err
        assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (["--set", "steps=abc"], "config key 'steps' expects an int; got 'abc'"),
        (["--set", "robust=no"], "config key 'robust' expects a bool (true or false)"),
        (["--set", "stepz=3"], "unknown config key 'stepz' (see configs/fit.py); nearest: steps"),
        (["--fit-steps", "-5"], "config key 'steps' expects a non-negative int (>= 0)"),
    ],
)
def test_reconstruct_and_demo_type_their_overrides(capsys, tmp_path, override, expected):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photo)
    for args in (["reconstruct", str(photo)], ["demo"]):
        assert main([*args, "--out", str(tmp_path / "out"), *override]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err


def test_train_refuses_a_workdir_that_is_a_file(tmp_path, capsys):
    afile = tmp_path / "runs"
    afile.write_text("not a folder")
    assert main(["train", "mask", "--workdir", str(afile), "--config-variant", "smoke"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file, not a folder" in err[0]


def test_reconstruct_checks_out_and_shard_before_any_work(capsys, tmp_path):
    """--out naming a file, or under a file, and a bad --shard: one line, exit 2, before the model
    is even looked for (no model exists at --model)."""
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((80, 80, 3), np.uint8)).save(photo)
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = {
        ("--out", str(afile)): "is a file, not a folder",
        ("--out", str(afile / "sub")): "cannot write there",
        ("--out", str(tmp_path / "o"), "--shard", "3/2"): "expected K/N with 1 <= K <= N",
        ("--out", str(tmp_path / "o"), "--shard", "x"): "expected K/N",
    }
    for extra, expected in cases.items():
        args = ["reconstruct", str(photo), *extra, "--model", str(tmp_path / "none.npz")]
        assert main(args) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("extra", "expected"),
    (
        ([], "model"),
        (["--set", "landmark_vertices=ibug"], "ibug"),
        (["--option", "landmarks=detected"], "ibug"),
    ),
)
def test_evaluate_applies_the_protocols_fit_settings_unless_set(
    monkeypatch, tmp_path, extra, expected
):
    """``occface evaluate synthetic`` fits the model's own landmark vertices (its given true
    landmarks are those), unless ``--set`` names the key or its landmarks are detected (then the
    default, the iBUG vertices)."""
    from occface_jax.eval.protocols import runner

    seen = {}

    def fake_evaluate(protocol, data, out, predictor, *rest):
        predictor._factory()
        return {"samples": 0, "failed": 0}

    monkeypatch.setattr(runner, "make_predictor", lambda config, *a: seen.setdefault("config", config))  # fmt: skip
    monkeypatch.setattr(runner, "evaluate", fake_evaluate)
    args = ["evaluate", "synthetic", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")]
    assert main(args + extra) == 0
    assert seen["config"].landmark_vertices == expected
