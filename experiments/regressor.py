"""The coefficient regressor on synthetic faces with ground truth, clean and occluded (issue 19).

Faces: the data engine's (``occface_jax.data.synth``) from the default model at 224 px with Deng
et al.'s camera, seed 30 by default (the regressor's training data is seed 2: no face here was
seen in training), the same sampling as ``synthetic_fit.py``. Error: mean per-vertex distance
(mm) over the face region after rigid alignment (rotation + translation, no scale) of the
predicted shape to the true one (``eval.metrics.surface.aligned_vertex_distances``). Rows: the
mean face (zero coefficients: where a fresh regressor and the fit start), the regressor alone
(``--checkpoints DIR``, the ``--workdir`` of ``occface train regressor``) and, with ``--fit``,
the fit from the mean face (``fit.Fitter``, landmarks = true + 1.5 px noise). Seconds per face
(the network's forward after its first call; the fit's whole run).

    python experiments/regressor.py --checkpoints runs --n 24 --out experiments/results/regressor_table.md
"""

from __future__ import annotations

import argparse
import platform
import time

import jax.numpy as jnp
import numpy as np
from _tables import emit  # experiments/_tables.py

from occface_jax.app.predictors import RegressorPredictor
from occface_jax.config import load_config
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.eval.metrics.surface import aligned_vertex_distances
from occface_jax.eval.protocols.synthetic import benchmark_faces
from occface_jax.fit import Fitter
from occface_jax.morphable import geometry, load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", help="folder with regressor/ (occface train --workdir)")
    parser.add_argument("--n", type=int, default=24, help="synthetic faces")
    parser.add_argument("--seed", type=int, default=30)
    parser.add_argument("--fit", action="store_true", help="also the fit from the mean face")
    parser.add_argument("--fit-variant", default="fast", help="configs/fit.py variant for --fit")
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
    fitter = Fitter(face, load_config("fit", args.fit_variant), full) if args.fit else None

    def error(coeffs: dict, truth: np.ndarray) -> float:
        shape = geometry.shape(jface, jnp.asarray(coeffs["id"]), jnp.asarray(coeffs["exp"]))
        return float(aligned_vertex_distances(np.asarray(shape)[region], truth).mean())

    errors: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}

    def record(name: str, value: float, took: float | None = None) -> None:
        errors.setdefault(name, []).append(value)
        if took is not None:
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
        landmarks = s["landmarks"] + rng.normal(0.0, 1.5, s["landmarks"].shape)
        for kind in ("clean", "occluded"):
            if predictor is not None:
                start = time.perf_counter()
                predicted = predictor(s[kind])
                record(f"regressor, {kind}", error(predicted, truth), time.perf_counter() - start)
            if fitter is not None:
                start = time.perf_counter()
                fitted = fitter(s[kind], landmarks.astype(np.float32))
                took = time.perf_counter() - start
                record(f"fit from the mean face, {kind}", error(fitted.coeffs, truth), took)

    lines = [
        f"{args.n} synthetic faces (seed {args.seed}, 224 px), {platform.processor() or 'cpu'}",
        "",
        "| condition | mean vertex error (mm) | median | s per face |",
        "| --- | --- | --- | --- |",
    ]
    for name, values in errors.items():
        took = f"{np.mean(seconds[name]):.3f}" if name in seconds else "-"
        lines.append(f"| {name} | {np.mean(values):.2f} | {np.median(values):.2f} | {took} |")
    emit("Regressor on synthetic ground truth", lines, args.out)


if __name__ == "__main__":
    main()
