"""What the fit's identity knows about a real scan (issue 20): the scan's own identity in the
model (an oracle), how much of it the 68 landmarks can see, and where fits of its renders land.

1. Oracle: the model's identity fitted to the scan in 3-D (no image): alternating the scans
   protocol's alignment (similarity on the inner 51 landmarks, ICP with scale) with ridge least
   squares of the identity coefficients to the closest surface points (``--ridge``, mm^2 per unit
   coefficient^2). Its scan-to-mesh error is the floor of what the identity basis can do.
2. Landmark signal: how far that oracle identity moves the 68 landmark vertices (``ibug``) from
   the mean face's, after the best similarity (what pose and scale absorb), in the image plane:
   the signal a landmark detector would have to resolve.
3. Fits: each view of the ``scans`` protocol (yaw -25/0/25, clean and occluded) fitted by the
   pipeline for each ``--column NAME='key=value;key=value'`` (fit-config overrides; "default" is
   always run): scan-to-mesh error, the identity's norm and cosine to the oracle's, the sum of
   the blendshape weights.

    python experiments/scan_identity.py --column frozen='photometric_frozen=id,exp' --out FILE
"""

from __future__ import annotations

import argparse
import time

import jax.numpy as jnp
import numpy as np
from _tables import emit  # experiments/_tables.py

from occface_jax.app.pipeline import Reconstructor
from occface_jax.config import apply_overrides, load_config
from occface_jax.eval.metrics.surface import (
    apply_similarity,
    closest_points_on_mesh,
    scan_to_mesh_alignment,
    similarity_transform,
)
from occface_jax.eval.protocols import scans
from occface_jax.eval.protocols.runner import ReconstructorPredictor
from occface_jax.fit.fitter import with_landmark_vertices
from occface_jax.morphable import geometry, load_model
from occface_jax.paths import shared_dir


def barycentric(points: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(P, 3) barycentric coordinates of ``points`` (P, 3) in the triangles (a, b, c) (P, 3)."""
    e0, e1, e2 = b - a, c - a, points - a
    d00, d01, d11 = (e0 * e0).sum(-1), (e0 * e1).sum(-1), (e1 * e1).sum(-1)
    d20, d21 = (e2 * e0).sum(-1), (e2 * e1).sum(-1)
    den = d00 * d11 - d01 * d01
    v, w = (d11 * d20 - d01 * d21) / den, (d00 * d21 - d01 * d20) / den
    return np.stack([1 - v - w, v, w], -1)


def oracle_identity(model, scan: dict, ridge: float, rounds: int = 8) -> np.ndarray:
    """The identity coefficients (K,) whose neutral shape lies closest to ``scan``'s points:
    ``rounds`` of (alignment as the protocol scores it, ridge least squares on the closest
    surface points within the 95th percentile of distance)."""
    mean = np.asarray(model.mean_shape, np.float64)
    basis = np.asarray(model.id_basis, np.float64).reshape(len(mean), 3, -1)
    tris = np.asarray(model.triangles)[np.asarray(model.face_triangles)]
    ids = np.asarray(model.landmarks68)
    alpha = np.zeros(basis.shape[-1])
    for _ in range(rounds):
        vertices = mean + basis @ alpha
        sim = scan_to_mesh_alignment(
            vertices, tris, vertices[ids][17:], scan["points"], scan["landmarks"][17:]
        )
        s, rotation, t = sim
        closest, dist, face = closest_points_on_mesh(
            scan["points"], apply_similarity(sim, vertices), tris, return_triangles=True
        )
        keep = dist <= np.percentile(dist, 95)
        corners = tris[face[keep]]
        weights = barycentric(
            ((closest[keep] - t) @ rotation) / s, *(vertices[corners[:, k]] for k in range(3))
        )
        design = np.einsum("pk,pkcj->pcj", weights, basis[corners]).reshape(-1, len(alpha))
        base = np.einsum("pk,pkc->pc", weights, mean[corners]).reshape(-1)
        target = (((scan["points"] - t) @ rotation) / s)[keep].reshape(-1)
        gram = design.T @ design + ridge * np.eye(len(alpha))
        alpha = np.linalg.solve(gram, design.T @ (target - base))
    return alpha


def shape_error(model, tris, scan, ident, expr) -> float:
    """The protocol's mean scan-to-mesh error (mm) of the shape (ident, expr)."""
    v = np.asarray(geometry.shape(model, jnp.asarray(ident), jnp.asarray(expr)), np.float64)
    return float(scans.align_to_scan(scan, v, tris, np.asarray(geometry.landmarks3d(model, v)))[1].mean())  # fmt: skip


def landmark_signal(model, ident: np.ndarray) -> tuple[float, float]:
    """(mean image-plane displacement (mm) of the iBUG 68 landmark vertices that ``ident`` causes
    after the best 3-D similarity, the same as a share of the outer-eye distance)."""
    model = with_landmark_vertices(model, "ibug")
    zero = jnp.zeros(np.asarray(model.exp_basis).shape[1])
    ids = np.asarray(model.landmarks68)
    mean = np.asarray(geometry.shape(model, jnp.zeros(len(ident)), zero), np.float64)[ids]
    moved = np.asarray(geometry.shape(model, jnp.asarray(ident), zero), np.float64)[ids]
    aligned = apply_similarity(similarity_transform(moved, mean), moved)
    shift = float(np.linalg.norm((aligned - mean)[:, :2], axis=1).mean())
    return shift, shift / float(np.linalg.norm(mean[36] - mean[45]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scan", default="james", help="a scan of $OCCFACE_SHARED/faces/menpo3d")
    parser.add_argument(
        "--ridge", default="0.3,3,10,30,100", help="oracle ridges, mm^2 per coefficient^2"
    )
    parser.add_argument("--column", action="append", default=[], help="NAME='key=v;key=v'")
    parser.add_argument("--out", help="write the tables (markdown) here")
    args = parser.parse_args()
    start = time.time()
    model = load_model()
    root = shared_dir() / "faces" / "menpo3d"
    scan = scans.load_textured_scan(str(root), args.scan)
    tris = np.asarray(model.triangles)[np.asarray(model.face_triangles)]
    zero_exp = np.zeros(np.asarray(model.exp_basis).shape[1], np.float32)
    lines = [
        f"{args.scan}: mean face {scan['baseline'].mean():.3f} mm; {time.strftime('%Y-%m-%d')}.",
        "",
        "| oracle ridge | scan-to-mesh (mm) | median (mm) | identity norm | 68-point signal (mm) "
        "| signal / outer-eye distance |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    oracles = {}
    for ridge in (float(r) for r in args.ridge.split(",")):
        alpha = oracle_identity(model, scan, ridge)
        oracles[ridge] = alpha
        v = np.asarray(geometry.shape(model, jnp.asarray(alpha, jnp.float32), zero_exp))
        dist = scans.align_to_scan(scan, v.astype(np.float64), tris, np.asarray(geometry.landmarks3d(model, v)))[1]  # fmt: skip
        shift, share = landmark_signal(model, alpha.astype(np.float32))
        lines.append(
            f"| {ridge:g} | {dist.mean():.3f} | {np.median(dist):.3f} | "
            f"{np.linalg.norm(alpha):.2f} | {shift:.2f} | {share:.3f} |"
        )
        print(lines[-1], flush=True)
    reference = oracles[min(oracles, key=lambda r: abs(r - 10.0))]
    lines += [
        "",
        f"Fits (cosine to the oracle identity at ridge "
        f"{min(oracles, key=lambda r: abs(r - 10.0)):g}):",
        "",
        "| column | yaw | condition | scan-to-mesh (mm) | identity only (mm) | identity norm "
        "| cosine to oracle | blendshape sum |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    columns = [("default", "")] + [c.split("=", 1) for c in args.column]
    for name, overrides in columns:
        config = apply_overrides(
            load_config("fit", ""), [o for o in overrides.split(";") if o], "configs/fit.py"
        )
        predictor = ReconstructorPredictor(Reconstructor(model, config))
        for sample in scans.samples(root, names=args.scan):
            _, image, landmarks = scans.sample_view(sample)
            box = np.concatenate([landmarks.min(0), landmarks.max(0)])
            coeffs = predictor.reconstruct(image, box).fit.coeffs
            ident, expr = np.asarray(coeffs["id"]), np.asarray(coeffs["exp"])
            cosine = ident @ reference / (np.linalg.norm(ident) * np.linalg.norm(reference) + 1e-9)
            lines.append(
                f"| {name} | {sample.data['yaw']:+.0f} | {sample.subset} | "
                f"{shape_error(model, tris, scan, ident, expr):.3f} | "
                f"{shape_error(model, tris, scan, ident, zero_exp):.3f} | "
                f"{np.linalg.norm(ident):.2f} | {cosine:.2f} | {expr.sum():.2f} |"
            )
            print(lines[-1], flush=True)
    lines.append(f"\n{time.time() - start:.0f} s.")
    emit("The fit's identity against a real scan's own", lines, args.out)


if __name__ == "__main__":
    main()
