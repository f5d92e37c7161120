"""The ``occface`` entry point: exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys

from occface_jax.cli import main


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
