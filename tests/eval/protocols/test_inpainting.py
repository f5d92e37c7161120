"""The inpainting protocol on images/ + masks/: a repainting off by 0.01 everywhere scores L1 0.01
and PSNR 40 dB; the holed input's L1 is the hole's share times its mean error; ratios land in
their bins; a missing mask names its path."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.errors import OccfaceError
from occface_jax.eval.protocols import PROTOCOLS
from occface_jax.eval.protocols.inpainting import ratio_bin
from occface_jax.eval.protocols.runner import Predicted, evaluate
from occface_jax.io import images as imageio

SIZE = 80


def _clean(k: int) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    return np.stack([0.2 + 0.6 * x, 0.2 + 0.6 * y, 0.5 + 0.1 * np.sin(6 * x + k)], -1)


def _write(root):
    cleans, holes = {}, {}
    for k, rows in enumerate((12, 28)):  # holes of 15 % and 35 % of the image
        name = f"face{k}"
        cleans[name] = np.round(_clean(k) * 255) / 255
        hole = np.zeros((SIZE, SIZE), bool)
        hole[10 : 10 + rows, :] = True
        holes[name] = hole
        imageio.save_image(root / "images" / f"{name}.png", cleans[name])
        imageio.save_image(root / "masks" / f"{name}.png", hole.astype(np.float32))
    return cleans, holes


def test_known_scores_by_mask_ratio(tmp_path):
    cleans, holes = _write(tmp_path / "data")

    def predict(image, box):
        name = image.stem.removesuffix("_input")
        return Predicted(
            np.zeros((1, 3)),
            np.zeros((0, 3), int),
            np.zeros((68, 3)),
            np.zeros((68, 2)),
            deoccluded=cleans[name] + 0.01,
        )

    results = evaluate(
        PROTOCOLS["inpainting"], tmp_path / "data", tmp_path / "out", predict, progress=False
    )
    assert results["failed"] == 0 and set(results["bins"]) == {"10-20%", "30-40%", "all"}
    for label, name in (("10-20%", "face0"), ("30-40%", "face1")):
        m = results["bins"][label]
        assert m["l1"]["mean"] == pytest.approx(0.01, rel=1e-4)
        assert m["psnr"]["mean"] == pytest.approx(40.0, rel=1e-4)
        assert 0.9 < m["ssim"]["mean"] <= 1.0
        hole, clean = holes[name], cleans[name]
        expected = hole.mean() * np.abs(0.5 - clean[hole]).mean()  # grey fill, mean over all pixels
        assert m["input_l1"]["mean"] == pytest.approx(expected, abs=2e-3)
        assert m["input_psnr"]["mean"] < m["psnr"]["mean"]
    assert "| all | 2 | 0.0100 | 40.0000 |" in (tmp_path / "out" / "results.md").read_text()


def test_bins_and_layout_errors(tmp_path):
    assert [ratio_bin(r) for r in (0.0, 0.05, 0.1, 0.15, 0.59, 0.6, 0.9, 1.0)] == [
        "0-10%",
        "0-10%",
        "0-10%",
        "10-20%",
        "50-60%",
        "50-60%",
        "60-100%",
        "60-100%",
    ]
    _write(tmp_path / "data")
    (tmp_path / "data" / "masks" / "face1.png").unlink()
    with pytest.raises(OccfaceError) as err:
        evaluate(PROTOCOLS["inpainting"], tmp_path / "data", tmp_path / "o", None, progress=False)
    assert "masks/face1.png: no mask for face1.png; expected layout: ROOT/images/" in str(err.value)
