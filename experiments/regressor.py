"""The coefficient regressor on synthetic faces with ground truth, clean and occluded (issue 19):
the network alone, and as the fit's starting point against today's start at the mean face.

Faces: the data engine's (``occface_jax.data.synth``) from the default model at 224 px with Deng
et al.'s camera, seed 30 by default (the regressor's training data is seed 2: no face here was
seen in training), the same sampling as ``synthetic_fit.py``. Error: mean per-vertex distance
(mm) over the face region after rigid alignment (rotation + translation, no scale) of the
predicted shape to the true one (``eval.metrics.surface.aligned_vertex_distances``).

Rows: the mean face (zero coefficients: where a fresh regressor and today's fit start), the
regressor alone (``--checkpoints DIR``: the ``--workdir`` of ``occface train regressor`` or an
``occface export`` folder) and, with ``--fit``, the fit (``configs/fit.py`` ``--variant``,
landmarks = true + 1.5 px noise) from the mean face and from the regressor's prediction, each
at the fractions ``--fractions`` of the config's landmark and photometric steps: the steps the
regressor's start saves for the same error. Seconds per face: the network's forward after its
first call; the fit's whole run (the first fit of each step count compiles: reported apart).

    python experiments/regressor.py --checkpoints runs --fit --n 8 \
        --out experiments/results/regressor_table.md
"""

from __future__ import annotations

import argparse
import platform
import time

import jax.numpy as jnp
import numpy as np
from _config import add_fit_config_arguments, config_name, fit_config
from _tables import emit  # experiments/_tables.py

from occface_jax.app.predictors import RegressorPredictor
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.eval.metrics.surface import aligned_vertex_distances
from occface_jax.eval.protocols.synthetic import benchmark_faces
from occface_jax.fit import Fitter
from occface_jax.morphable import geometry, load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", help="regressor workdir (occface train) or export folder")
    parser.add_argument("--n", type=int, default=24, help="synthetic faces")
    parser.add_argument("--seed", type=int, default=30)
    parser.add_argument("--fit", action="store_true", help="also the fits (from mean / regressor)")
    parser.add_argument(
        "--fractions", default="0.25,1", help="fractions of the fit's steps to run (comma list)"
    )
    add_fit_config_arguments(parser)
    parser.add_argument("--out", help="write the table (markdown) here")
    args = parser.parse_args()

    full = load_model()
    face = full.face_only()
    jface = face.to_jax()
    region = np.asarray(face.face_region)
    occlusion = OcclusionConfig(coverage=(0.15, 0.4), count=(1, 1))
    synth = benchmark_faces(full, args.seed, occlusion)
    predictor = (
        RegressorPredictor.from_checkpoints(args.checkpoints, face) if args.checkpoints else None
    )
    fitters: dict[float, Fitter] = {}
    if args.fit:
        base = fit_config(args, truth_landmarks=True)
        for fraction in (float(f) for f in args.fractions.split(",")):
            config = base.copy_and_resolve_references()
            config.landmark_steps = max(1, round(fraction * base.landmark_steps))
            config.steps = max(1, round(fraction * base.steps))
            fitters[fraction] = Fitter(face, config, full)
    starts = ["mean face"] + (["regressor"] if predictor is not None else [])

    def error(coeffs: dict, truth: np.ndarray) -> float:
        shape = geometry.shape(jface, jnp.asarray(coeffs["id"]), jnp.asarray(coeffs["exp"]))
        return float(aligned_vertex_distances(np.asarray(shape)[region], truth).mean())

    errors: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    first: dict[str, float] = {}

    def record(name: str, value: float, took: float | None = None) -> None:
        errors.setdefault(name, []).append(value)
        if took is None:
            return
        if name not in first and name.startswith("fit"):
            first[name] = took  # compiling
        else:
            seconds.setdefault(name, []).append(took)

    if predictor is not None:
        predictor(synth[0]["clean"])  # compile outside the timing
    for i in range(args.n):
        s = synth[i]
        coeffs = synth.layout.split(jnp.asarray(s["coeffs"]))
        truth = np.asarray(geometry.shape(jface, coeffs["id"], coeffs["exp"]))[region]
        zeros = {k: np.zeros_like(np.asarray(v)) for k, v in coeffs.items()}
        record("mean face", error(zeros, truth))
        rng = np.random.default_rng([args.seed, i, 1])
        landmarks = (s["landmarks"] + rng.normal(0.0, 1.5, s["landmarks"].shape)).astype(np.float32)
        for kind in ("clean", "occluded"):
            predicted = None
            if predictor is not None:
                start = time.perf_counter()
                predicted = predictor(s[kind])
                record(f"regressor, {kind}", error(predicted, truth), time.perf_counter() - start)
            for fitter in fitters.values():
                for origin in starts:
                    begin = predicted if origin == "regressor" else None
                    start = time.perf_counter()
                    fitted = fitter(s[kind], landmarks, start=begin)
                    took = time.perf_counter() - start
                    steps = f"{fitter.config.landmark_steps}+{fitter.config.steps} steps"
                    name = f"fit from the {origin} ({steps}), {kind}"
                    record(name, error(fitted.coeffs, truth), took)

    fit_line = f"; fit: {config_name(args)}" if fitters else ""
    lines = [
        f"{args.n} synthetic faces (seed {args.seed}, 224 px, landmarks true + 1.5 px){fit_line}; "
        f"{platform.processor() or 'cpu'}",
        "",
        "| condition | mean vertex error (mm) | median | s per face | first call (s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, values in errors.items():
        took = f"{np.mean(seconds[name]):.3f}" if name in seconds else "-"
        compile_s = f"{first[name]:.1f}" if name in first else "-"
        lines.append(
            f"| {name} | {np.mean(values):.2f} | {np.median(values):.2f} | {took} | {compile_s} |"
        )
    emit("Regressor on synthetic ground truth", lines, args.out)


if __name__ == "__main__":
    main()
