"""Issue 20 end to end: sunglasses over synthetic faces with a known expression: the expression
stays right (the eye/brow protection yielding, ``feature_protect_yield``, where the photometric
stage fits it; the landmark stage's, untouched by the lenses, by default)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from occface_jax.configs.fit import get_config
from occface_jax.morphable import load_model

pytestmark = pytest.mark.slow(reason="16 fast fits of 224 px synthetic faces: ~2 min on 2 cores")


def _experiment():
    path = Path(__file__).parents[2] / "experiments" / "sunglasses.py"
    sys.path.insert(0, str(path.parent))  # its _config / _tables helpers
    spec = importlib.util.spec_from_file_location("sunglasses_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _means(config) -> dict[str, dict[str, float]]:
    """Mean errors per condition over the seed-20 faces 0 and 1 (face 1's eyes yield; face 0's
    lens margin is already occluded by the colour rule)."""
    out = _experiment().run(2, 20, config, load_model())
    return {k: {m: float(np.mean([r[m] for r in v])) for m in v[0]} for k, v in out.items()}


def test_the_expression_stays_right_under_sunglasses():
    """With the photometric stage fitting the expression (``photometric_frozen=""``) the yielding
    protection fits the eye and mouth openings better under sunglasses and leaves clean faces as
    they were. With the default (the expression is the landmark stage's) the sunglasses cannot
    move it at all (its error on 12 faces: 1.16 mm, the photometric stage's 1.13 under the lenses
    and 1.09 clean; experiments/results/sunglasses.md)."""
    config = get_config("fast")
    config.photometric_frozen = ""
    photometric = _means(config)
    new, old = photometric["sunglasses, yield"], photometric["sunglasses, no yield"]
    assert new["eye"] + new["mouth"] < old["eye"] + old["mouth"]
    clean, clean_old = photometric["clean, yield"], photometric["clean, no yield"]
    assert clean["exp"] <= clean_old["exp"] * 1.05 + 0.05  # no harm
    default = _means(get_config("fast"))
    assert default["sunglasses, yield"]["exp"] == pytest.approx(default["clean, yield"]["exp"], rel=1e-6)  # fmt: skip
    assert default["sunglasses, yield"]["eye"] == pytest.approx(default["clean, yield"]["eye"], rel=1e-6)  # fmt: skip
