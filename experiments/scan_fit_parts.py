"""Which part of the fit moves the shape away from a real scan: each view of the ``scans``
protocol (``eval/protocols/scans.py``: the james scan, yaw -25/0/25, clean and occluded) is
fitted, and the scan-to-mesh error of the fitted shape is reported whole, with the expression set
to 0 (identity only), with the identity set to 0 (expression only) and with the mouth and jaw
blendshapes set to 0; plus the largest blendshape weights. Same alignment and crop as the protocol.

    python experiments/scan_fit_parts.py [--set weights.w_exp=5]
"""

from __future__ import annotations

import argparse
import time

import jax.numpy as jnp
import numpy as np
from _config import add_fit_config_arguments, config_name, fit_config  # experiments/_config.py
from _tables import emit  # experiments/_tables.py

from occface_jax.app.pipeline import Reconstructor
from occface_jax.eval.protocols import scans
from occface_jax.eval.protocols.runner import ReconstructorPredictor
from occface_jax.morphable import geometry, load_model
from occface_jax.morphable.io import read_npz
from occface_jax.morphable.registry import find_model
from occface_jax.paths import shared_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_fit_config_arguments(parser)
    parser.add_argument("--scan", default="james", help="a scan of $OCCFACE_SHARED/faces/menpo3d")
    parser.add_argument("--out", help="write the table (markdown) here")
    args = parser.parse_args()
    model = load_model()
    predictor = ReconstructorPredictor(Reconstructor(model, fit_config(args)))
    tris, root = predictor.triangles, shared_dir() / "faces" / "menpo3d"
    fields = read_npz(find_model())
    names = [str(n) for n in fields["exp_names"]] if "exp_names" in fields else None
    mouth = [i for i, n in enumerate(names or []) if n.startswith(("mouth", "jaw"))]

    lines, scan = [], None
    for sample in scans.samples(root, names=args.scan):
        scan, image, landmarks = scans.sample_view(sample)
        box = np.concatenate([landmarks.min(0), landmarks.max(0)])
        fit = predictor.reconstruct(image, box).fit
        ident, expr = jnp.asarray(fit.coeffs["id"]), np.asarray(fit.coeffs["exp"])
        no_mouth = expr.copy()
        no_mouth[mouth] = 0.0
        parts = [
            geometry.shape(model, ident, jnp.asarray(expr)),
            geometry.shape(model, ident, jnp.zeros(expr.shape)),
            geometry.shape(model, jnp.zeros_like(ident), jnp.asarray(expr)),
            geometry.shape(model, ident, jnp.asarray(no_mouth)),
        ]
        errors = [
            scans.align_to_scan(scan, v, tris, np.asarray(geometry.landmarks3d(model, v)))[1].mean()
            for v in (np.asarray(p, np.float64) for p in parts)
        ]
        top = np.argsort(-np.abs(expr))[:4]
        largest = ", ".join(f"{names[i] if names else i} {expr[i]:.2f}" for i in top)
        cells = " | ".join(f"{e:.2f}" for e in errors)
        lines.append(f"| {sample.data['yaw']:+.0f} | {sample.subset} | {cells} | {largest} |")
        print(lines[-1], flush=True)
    header = [
        f"{args.scan}: scan-to-mesh mean error (mm) of parts of the fitted shape; config "
        f"{config_name(args)}; {time.strftime('%Y-%m-%d')}. Mean face: "
        f"{scan['baseline'].mean():.2f}.",
        "",
        "| yaw | condition | fit | identity only | expression only | no mouth/jaw blendshapes "
        "| largest blendshapes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    emit("Parts of the fitted shape against a real scan", header + lines, args.out)


if __name__ == "__main__":
    main()
