"""Expression under sunglasses (issue 20): the fit with and without the eye/brow protection yielding
(``feature_protect_yield``), on synthetic faces with sunglasses and on clean ones.

Faces as in ``synthetic_fit.py`` (data engine, 224 px, true landmarks + 1.5 px noise), the occluder
always one pair of sunglasses. Errors (model units, mm): eye opening (mean over both eyes of the
upper-lower eyelid vertex distance, landmarks 37/41, 38/40, 43/47, 44/46) and mouth opening (inner
lips 61/67, 62/66, 63/65), |fitted - true|; expression vertex error (mean over the face region of
|E exp_fit - E exp_true|, the expression displacement alone); full vertex error after rigid
alignment.

    python experiments/sunglasses.py --n 6 --variant fast --out experiments/results/sunglasses.md
"""

from __future__ import annotations

import argparse
import platform
import time

import jax.numpy as jnp
import numpy as np
from _config import add_fit_config_arguments, config_name, fit_config  # experiments/_config.py
from _tables import emit  # experiments/_tables.py

from occface_jax.data.occluders import OcclusionConfig
from occface_jax.data.synth import SynthConfig, SyntheticFaces
from occface_jax.eval.metrics.surface import aligned_vertex_distances
from occface_jax.fit import Fitter
from occface_jax.morphable import geometry, load_model

#: iBUG-68 (upper, lower) landmark pairs of the eyelids and of the inner lips.
EYELIDS = ((37, 41), (38, 40), (43, 47), (44, 46))
INNER_LIPS = ((61, 67), (62, 66), (63, 65))


def openings(vertices: np.ndarray, landmarks68: np.ndarray) -> tuple[float, float]:
    """(eye, mouth) opening: mean upper-lower distance of :data:`EYELIDS` / :data:`INNER_LIPS`
    (model units) of ``vertices`` (N, 3) with landmark vertex ids ``landmarks68`` (68,)."""

    def mean_gap(pairs) -> float:
        a, b = (landmarks68[[p[k] for p in pairs]] for k in (0, 1))
        return float(np.linalg.norm(vertices[a] - vertices[b], axis=1).mean())

    return mean_gap(EYELIDS), mean_gap(INNER_LIPS)


def errors(jface, region: np.ndarray, lm68: np.ndarray, fitted: dict, true: dict) -> dict:
    """Eye / mouth opening errors, expression and full vertex errors of ``fitted`` coefficients
    against the ``true`` ones (each with 'id' and 'exp')."""
    shape = {
        k: np.asarray(geometry.shape(jface, c["id"], c["exp"]))
        for k, c in (("f", fitted), ("t", true))
    }
    zero = jnp.zeros_like(jnp.asarray(true["id"]))
    exp = {
        k: np.asarray(geometry.shape(jface, zero, jnp.asarray(c["exp"])))
        for k, c in (("f", fitted), ("t", true))
    }
    (eye_f, mouth_f), (eye_t, mouth_t) = openings(shape["f"], lm68), openings(shape["t"], lm68)
    return {
        "eye": abs(eye_f - eye_t),
        "mouth": abs(mouth_f - mouth_t),
        "exp": float(np.linalg.norm((exp["f"] - exp["t"])[region], axis=1).mean()),
        "vertex": float(aligned_vertex_distances(shape["f"][region], shape["t"][region]).mean()),
    }


def synthetic(full, kinds: tuple[str, ...] | None, seed: int) -> SyntheticFaces:
    """The data engine's faces at 224 px; one occluder of ``kinds`` (None: clean faces)."""
    occlusion = OcclusionConfig(kinds=kinds or ("sunglasses",), coverage=(0.1, 0.4), count=(1, 1))
    return SyntheticFaces(
        full,
        SynthConfig(
            image_size=224,
            focal_jitter=0.0,
            max_angles_deg=(12.0, 30.0, 8.0),
            translation_dm=(0.05, 0.05, 0.4),
            occlusion=occlusion,
        ),
        seed=seed,
    )


def run(n: int, seed: int, config, full=None) -> dict[str, list[dict]]:
    """Per-face errors, keyed 'sunglasses, yield', 'sunglasses, no yield', 'clean, yield',
    'clean, no yield'."""
    full = full or load_model()
    face = full.face_only()
    jface = face.to_jax()
    region = np.asarray(face.face_region)
    lm68 = np.asarray(face.landmarks68)
    old = config.copy_and_resolve_references()
    old.feature_protect_yield = False
    fitters = {"yield": Fitter(face, config, full), "no yield": Fitter(face, old, full)}
    synth = synthetic(full, ("sunglasses",), seed)
    out: dict[str, list[dict]] = {}
    for i in range(n):
        s = synth[i]
        lms = s["landmarks"] + np.random.default_rng([seed, i, 1]).normal(0, 1.5, (68, 2))
        true = synth.layout.split(jnp.asarray(s["coeffs"]))
        for image in ("occluded", "clean"):
            for name, fitter in fitters.items():
                result = fitter(s[image], lms)
                fitted = {k: jnp.asarray(result.coeffs[k]) for k in ("id", "exp")}
                key = f"{'sunglasses' if image == 'occluded' else 'clean'}, {name}"
                out.setdefault(key, []).append(errors(jface, region, lm68, fitted, true))
        print(f"face {i}: " + ", ".join(f"{k} {v[-1]}" for k, v in out.items()), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=6, help="number of synthetic faces")
    parser.add_argument("--seed", type=int, default=20)
    add_fit_config_arguments(parser)
    parser.add_argument("--out", help="write the table (markdown) here")
    args = parser.parse_args()
    start = time.perf_counter()
    out = run(args.n, args.seed, fit_config(args, truth_landmarks=True))
    lines = [
        f"{args.n} synthetic faces (seed {args.seed}), each with sunglasses and clean, config "
        f"{config_name(args)}; {platform.processor() or platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}, {time.perf_counter() - start:.0f} s in all.",
        "",
        "| condition | eye opening error (mm) | mouth opening error (mm) | expression vertex "
        "error (mm) | vertex error (mm) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, rows in out.items():
        means = [np.mean([r[m] for r in rows]) for m in ("eye", "mouth", "exp", "vertex")]
        lines.append(f"| {key} | " + " | ".join(f"{v:.2f}" for v in means) + " |")
    emit("Expression under sunglasses: the eye/brow protection yielding", lines, args.out)


if __name__ == "__main__":
    main()
