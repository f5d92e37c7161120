"""Batched fits (``Fitter.fit_batch``): each face's result equals its fit alone, whatever its batch
(padding, other faces, a ``('data',)`` mesh of 8 faked CPU devices), and ``check`` stops a fit
between its chunks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.config import load_config
from occface_jax.fit.fitter import FitRequest, Fitter, batch_devices
from occface_jax.morphable import CoeffLayout
from occface_jax.morphable.rendering import render
from occface_jax.render import deng_camera


def _faces(model, n: int) -> list[FitRequest]:
    """``n`` toy faces of different pose, albedo and background, a blue block on each cheek."""
    layout = CoeffLayout.for_model(model)
    requests = []
    for k in range(n):
        truth = layout.zeros()
        truth["angles"] = jnp.array([0.05 * k, 0.25 - 0.1 * k, 0.02 * k])
        truth["tex"] = truth["tex"].at[k % 3].set(0.8)
        background = jnp.full((224, 224, 3), 0.15 + 0.1 * k)
        r = render(model.to_jax(), truth, deng_camera(224), background=background)
        image = np.asarray(r.image).copy()
        image[120 + 5 * k : 150 + 5 * k, 70:110] = [0.1, 0.6, 0.9]
        requests.append(FitRequest(image, np.asarray(r.landmarks)))
    return requests


def _assert_same_fit(got, want, atol: float) -> None:
    """Shape, pose and occlusion of two fits of one face agree (``atol`` on coefficients)."""
    for key, value in want.coeffs.items():
        np.testing.assert_allclose(got.coeffs[key], value, atol=atol, err_msg=key)
    np.testing.assert_allclose(got.vertices, want.vertices, atol=50 * atol)
    np.testing.assert_allclose(got.landmarks, want.landmarks, atol=50 * atol)
    assert (got.occlusion != want.occlusion).mean() < 0.002
    assert sorted(got.history) == sorted(want.history)


def test_batch_devices_divide_the_batch():
    devices = list(range(8))
    assert [batch_devices(b, devices) for b in (1, 2, 3, 4, 6, 8, 12, 16)] == [
        1, 2, 3, 4, 6, 8, 6, 8,
    ]  # fmt: skip
    assert batch_devices(5, devices[:1]) == 1


@pytest.mark.slow(reason="compiles the fit at batch 1 and 3 (~2-4 min on a shared 2-core CPU)")
def test_batched_fits_equal_single_fits_with_a_padded_last_batch(toy_model):
    """Four faces at batch size 3 (the second batch: one face and two padding copies) against
    each fit alone. Faces do not interact (a face's gradient is its own loss's), so the results
    differ only by the rounding of batched kernels (a batch of 1 and of 3 sum in other orders);
    Adam's normalised first steps carry such a difference on a little (see the bounds)."""
    config = load_config("fit", "test")
    fitter = Fitter(toy_model, config)
    requests = _faces(toy_model, 4)
    singles = [fitter(r.image, r.landmarks) for r in requests]
    batched = fitter.fit_batch(requests[:3], batch_size=3)
    batched += fitter.fit_batch(requests[3:], batch_size=3)
    assert len(batched) == 4
    for got, want in zip(batched, singles, strict=True):
        _assert_same_fit(got, want, atol=1e-2)
        assert got.history["total"][-1] < got.history["total"][0]
    # The padded batch's face equals the same face in a full batch (same kernels): exactly.
    again = fitter.fit_batch([requests[3], requests[0], requests[1]], batch_size=3)[0]
    for key, value in batched[3].coeffs.items():
        np.testing.assert_array_equal(again.coeffs[key], value, err_msg=key)


def test_check_stops_the_fit_between_chunks(toy_model):
    """``check`` runs before the landmark stage and before each photometric chunk; what it
    raises leaves the fit there."""
    config = load_config("fit", "test")
    fitter = Fitter(toy_model, config)
    request = _faces(toy_model, 1)[0]
    calls = []

    class Stop(Exception):
        pass

    def check() -> None:
        calls.append(len(calls))
        if len(calls) == 3:  # landmark stage, chunk 1, then stop before chunk 2
            raise Stop

    with pytest.raises(Stop):
        fitter.fit_batch([request], check=check)
    assert len(calls) == 3
    chunks = int(config.steps) // int(config.robust_every)
    calls.clear()
    fitter.fit_batch([request], check=lambda: calls.append(1))
    assert len(calls) == 1 + 2 * chunks  # two passes (robust_restart)


SCRIPT = """
import json, sys
import jax, numpy as np
sys.path.insert(0, sys.argv[2])
from test_fit_batch import _faces
from occface_jax.config import load_config
from occface_jax.fit.fitter import Fitter
from occface_jax.morphable.synthetic import toy_model

model = toy_model()
fitter = Fitter(model, load_config("fit", "test"))
faces = _faces(model, 4)
if sys.argv[3] == "mesh":  # 4 faces padded to 8, one per device
    results = fitter.fit_batch(faces, batch_size=8)
else:
    results = [fitter(r.image, r.landmarks) for r in faces]
print(json.dumps({
    "devices": len(jax.devices()),
    "coeffs": [{k: v.tolist() for k, v in r.coeffs.items()} for r in results],
    "occlusion": [float(r.occlusion.sum()) for r in results],
}))
"""


@pytest.mark.slow(reason="two fresh interpreters compile the fit, one on 8 devices (~2-4 min)")
def test_eight_devices_give_the_one_face_results(tmp_path):
    """Four faces padded to a batch of 8 on 8 faked CPU devices (the ``('data',)`` mesh: one face
    per device) against each face fitted alone on 1 device: each device runs the one-face
    kernels, so the results agree to rounding."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
    from gan_task import subprocess_env

    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    out = {}
    for mode, devices in (("single", 1), ("mesh", 8)):
        run = subprocess.run(
            [sys.executable, str(script), str(tmp_path), str(Path(__file__).parent), mode],
            env=subprocess_env(devices),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        out[mode] = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["single"]["devices"] == 1 and out["mesh"]["devices"] == 8
    assert out["single"]["occlusion"] == out["mesh"]["occlusion"]
    for one, eight in zip(out["single"]["coeffs"], out["mesh"]["coeffs"], strict=True):
        for key in one:
            np.testing.assert_allclose(eight[key], one[key], atol=1e-5, err_msg=key)
