"""Derive the dense correspondences between MediaPipe's 468 face-mesh points and a morphable
model's surface, from the model itself (issue 20), and write the package's correspondence file.

Recipe: render the data engine's synthetic faces (random identity, expression, albedo, light,
pose within +/- ``--yaw`` degrees of yaw, a photo or noise background; every vertex's image
position known), run the JAX face mesh (one refinement pass) on each, and for each of the 468
points take the front-most triangle under it and its barycentric position there, mapped onto the
model's mean shape (mm). The point's correspondence is the median of those mean-shape positions
over the faces, snapped to the nearest point of the face region's surface (triangle +
barycentric). The residual is then the distance, in pixels of Deng et al.'s 224 crop, between the
face mesh's point and the correspondence projected under each face's true shape and pose, on the
derivation faces and on a second set with larger poses (``--test-yaw``).

    python tools/fit_dense468.py --faces 300 --out occface_jax/morphable/data/mediapipe468_ict_face.npz
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from occface_jax.data.backgrounds import random_background
from occface_jax.data.synth import SynthConfig, sample_coefficients
from occface_jax.faces.face_mesh import FaceMesh
from occface_jax.morphable import geometry, load_model
from occface_jax.morphable.correspondence import (
    DenseCorrespondence,
    closest_surface_points,
    save_correspondence,
)
from occface_jax.morphable.rendering import project, render
from occface_jax.render.camera import deng_camera

IMAGE_SIZE = 256


def observe(model, faces: int, seed: int, yaw: float, mesh: FaceMesh):
    """Per face: the face-mesh points (468, 2) px, the hit triangle (468,) (-1 off the face),
    barycentric (468, 3), the true vertex pixels (N, 2), and the yaw (degrees)."""
    jmodel = model.to_jax()
    camera = deng_camera(IMAGE_SIZE)
    config = SynthConfig(image_size=IMAGE_SIZE, max_angles_deg=(12.0, yaw, 8.0))

    @jax.jit
    def run(coeffs):
        r = render(jmodel, coeffs, camera)
        vertices = geometry.shape(jmodel, coeffs["id"], coeffs["exp"])
        return r.image, r.mask, r.triangle_id, project(jmodel, vertices, coeffs, camera)[2]

    tris = np.asarray(model.triangles)
    out = []
    for index in range(faces):
        rng = np.random.default_rng([seed, index])
        coeffs = sample_coefficients(model, config, rng)
        image, cover, tri_id, pixels = (np.asarray(x) for x in run(coeffs))
        background = random_background(rng, (IMAGE_SIZE, IMAGE_SIZE), 0.6)
        photo = np.clip(image + (1 - cover[..., None]) * background, 0, 1).astype(np.float32)
        lm = pixels[np.asarray(model.landmarks68)]
        box = np.concatenate([lm.min(0), lm.max(0)])
        result = mesh.landmarks(photo, box)
        if result.score < 0.5:
            continue
        points = result.landmarks[:, :2]
        col = np.clip(np.floor(points[:, 0]).astype(int), 0, IMAGE_SIZE - 1)
        row = np.clip(np.floor(points[:, 1]).astype(int), 0, IMAGE_SIZE - 1)
        hit = tri_id[row, col]
        corners = pixels[tris[np.maximum(hit, 0)]]  # (468, 3, 2)
        bary = barycentric_2d(points, corners)
        out.append((points, hit, bary, pixels, float(np.rad2deg(coeffs["angles"][1]))))
    return out


def barycentric_2d(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """(P, 3) barycentric coordinates of (P, 2) points in (P, 3, 2) triangles, clipped to the
    triangle (pixel rounding can put a point just outside the one it hit)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    bary = np.clip(np.stack([1 - l1 - l2, l1, l2], 1), 0, None)
    return bary / np.maximum(bary.sum(1, keepdims=True), 1e-12)


def residuals(corr: DenseCorrespondence, observations) -> np.ndarray:
    """(F, 468) pixel distances at 224 between observed points and projected correspondences."""
    rows = []
    for points, _, _, pixels, _ in observations:
        projected = np.einsum("pk,pkd->pd", corr.barycentric, pixels[corr.vertices])
        rows.append(np.linalg.norm(projected - points, axis=1) * 224.0 / IMAGE_SIZE)
    return np.asarray(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=300)
    parser.add_argument("--yaw", type=float, default=15.0, help="derivation faces, +/- degrees")
    parser.add_argument("--test-yaw", type=float, default=45.0, help="check faces, +/- degrees")
    parser.add_argument("--seed", type=int, default=468)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    start = time.perf_counter()
    full = load_model()
    face = full.face_only()
    mesh = FaceMesh(refine=1)
    fit_obs = observe(full, args.faces, args.seed, args.yaw, mesh)
    mean = np.asarray(full.mean_shape, np.float64)
    tris = np.asarray(full.triangles)
    located = []
    for _, hit, bary, _, _ in fit_obs:
        pos = np.einsum("pk,pkd->pd", bary, mean[tris[np.maximum(hit, 0)]])
        located.append(np.where((hit >= 0)[:, None], pos, np.nan))
    located = np.asarray(located)  # (F, 468, 3) mm on the mean shape
    target = np.nanmedian(located, axis=0)
    spread = np.sqrt(np.nanmean(np.sum((located - target) ** 2, -1), 0))
    region = np.asarray(full.face_triangles)
    vertices, bary = closest_surface_points(mean, tris[region], target)
    corr = DenseCorrespondence(vertices, bary, np.ones(468, np.float32), model_name=full.name)
    fit_res = residuals(corr, fit_obs)
    test_obs = observe(full, max(args.faces // 3, 10), args.seed + 1, args.test_yaw, mesh)
    test_res = residuals(corr, test_obs)
    rms = np.sqrt(np.mean(fit_res**2, 0))
    # Per-point weight: inverse residual variance, relative to the median point, in [0.1, 1].
    weight = np.clip((np.median(rms) / np.maximum(rms, 1e-3)) ** 2, 0.1, 1.0)
    yaw = np.abs([o[4] for o in test_obs])
    corr = DenseCorrespondence(
        vertices, bary, weight.astype(np.float32), model_name=full.name, residual_px=rms
    )
    save_correspondence(args.out, corr, full, face)
    print(f"derivation faces {len(fit_obs)}/{args.faces} (|yaw| <= {args.yaw}), "
          f"check faces {len(test_obs)} (|yaw| <= {args.test_yaw}); {time.perf_counter() - start:.0f} s")  # fmt: skip
    print(f"mean-shape spread of a point's location over faces: median {np.median(spread):.2f} mm, "
          f"90th percentile {np.percentile(spread, 90):.2f} mm")  # fmt: skip
    print("| faces | points | median px | mean px | 90th pct px |")
    print("| --- | --- | --- | --- | --- |")
    for name, res in (("derivation", fit_res), ("check, all", test_res),
                      ("check, |yaw| > 25", test_res[yaw > 25])):  # fmt: skip
        if res.size:
            print(f"| {name} ({len(res)}) | 468 | {np.median(res):.2f} | {res.mean():.2f} | "
                  f"{np.percentile(res, 90):.2f} |")  # fmt: skip
    print(f"weights: median {np.median(weight):.2f}, {int(np.sum(weight < 0.5))} points below 0.5")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
