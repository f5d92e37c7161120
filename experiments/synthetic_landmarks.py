"""How far the pipeline's detected landmarks are from the points the fit puts them on, on the data
engine's renders, where the truth is known (issue 20).

For each face of the synthetic benchmark (``eval.protocols.synthetic.benchmark_faces``: 224 px
renders, seed ``--seed``), clean and occluded, the default detector chain and face mesh run on the
render (``Reconstructor.detect``, as on a photo). Their 68 points are compared with the true
projections of the vertices the fit fits them to (``--set landmark_vertices``: the iBUG table by
default, with the jaw marched along the outline as the fit does), and the 468 dense points with
the true projections of their surface correspondences (``morphable/data/mediapipe468_*.npz``).
Printed per landmark group of the 68, and for all 468 dense points together: the mean signed
offset (x right, y down), the RMS distance, px at 224, and the ratio of the points' spread,
detected / true. A bias here is what the fit turns into a wrong shape.

    python experiments/synthetic_landmarks.py [--n 12] [--seed 7] [--set landmark_vertices=model]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import jax.numpy as jnp
import numpy as np

from occface_jax.app.pipeline import Reconstructor
from occface_jax.config import apply_overrides, load_config
from occface_jax.errors import OccfaceError
from occface_jax.eval.protocols.synthetic import benchmark_faces
from occface_jax.fit.fitter import with_landmark_vertices
from occface_jax.morphable import contour, load_model
from occface_jax.morphable.correspondence import load_correspondence
from occface_jax.morphable.rendering import project_dense, project_landmarks
from occface_jax.render import camera as cam

GROUPS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "lips": range(48, 68),
}


def table_cells(pairs: np.ndarray) -> str:
    """Mean dx, dy, RMS distance and the mean ratio of the points' spread (RMS distance from their
    centroid, per face) of detected to true, of ``pairs`` (faces, 2, P, 2)."""
    d = (pairs[:, 0] - pairs[:, 1]).reshape(-1, 2)
    rms = np.sqrt((d**2).sum(1).mean())
    spread = np.sqrt(((pairs - pairs.mean(axis=2, keepdims=True)) ** 2).sum(-1).mean(-1))
    ratio = (spread[:, 0] / spread[:, 1]).mean()
    return f"{d[:, 0].mean():+.2f} | {d[:, 1].mean():+.2f} | {rms:.2f} | {ratio:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12, help="faces")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--set", action="append", default=[], help="fit config KEY=VALUE")
    args = parser.parse_args()
    config = load_config("fit")
    apply_overrides(config, args.set)
    model = load_model()
    synth = benchmark_faces(model, args.seed)
    face = synth.model
    fitted = with_landmark_vertices(face, config.landmark_vertices)
    jaw = contour.for_model(face) if config.march_jaw else None
    points = load_correspondence(face).surface_points(face)
    reconstructor = Reconstructor(model, config)
    rows: dict[str, list[np.ndarray]] = {}
    dense_rows: dict[str, list[np.ndarray]] = {}
    missed = 0
    start = time.perf_counter()
    for i in range(args.n):
        sample = synth[i]
        coeffs = {k: jnp.asarray(v) for k, v in synth.layout.split(sample["coeffs"]).items()}
        camera = dataclasses.replace(cam.deng_camera(224), focal=float(sample["focal"]))
        truth68 = np.asarray(project_landmarks(fitted, coeffs, camera, jaw))
        truth468 = np.asarray(project_dense(face, coeffs, camera, points)[0])
        for condition in ("clean", "occluded"):
            try:
                found = reconstructor.detect(np.asarray(sample[condition]))[0]
            except OccfaceError:
                missed += 1
                continue
            rows.setdefault(condition, []).append(np.stack([np.asarray(found.landmarks), truth68]))
            if found.dense_landmarks is not None:
                dense = np.asarray(found.dense_landmarks)[:, :2]
                dense_rows.setdefault(condition, []).append(np.stack([dense, truth468]))
    seconds = time.perf_counter() - start
    print(
        f"synthetic benchmark faces (seed {args.seed}, {args.n} faces, 224 px); detector "
        f"{config.detector}, landmarks {config.landmarks}, landmark_vertices "
        f"{config.landmark_vertices}; {platform.machine()}, {time.strftime('%Y-%m-%d')}, "
        f"{seconds:.0f} s; {missed} renders without a face\n"
    )
    print("68 points minus the true projection of the fit's landmark vertices (px at 224):\n")
    print("| condition | group | mean dx | mean dy | RMS | spread, detected / true |")
    print("| --- | --- | --- | --- | --- | --- |")
    for condition, pairs in rows.items():
        stacked = np.stack(pairs)  # (faces, 2, 68, 2): detected, true
        for group, ids in {**GROUPS, "all": range(68)}.items():
            print(f"| {condition} | {group} | " + table_cells(stacked[:, :, list(ids)]))
    if dense_rows:
        print(
            "\n468 dense points minus the true projection of their correspondences (px at 224):\n"
        )
        print("| condition | faces | mean dx | mean dy | RMS | spread, detected / true |")
        print("| --- | --- | --- | --- | --- | --- |")
        for condition, pairs in dense_rows.items():
            print(f"| {condition} | {len(pairs)} | " + table_cells(np.stack(pairs)))


if __name__ == "__main__":
    main()
