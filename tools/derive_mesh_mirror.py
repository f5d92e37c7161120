"""Derive the face mesh's mirror map (``occface_jax/faces/data/mesh_mirror.npz``): for each of the
468 points, the point it becomes when the face is mirrored left-right.

The face mesh is run on a crop of each annotated face of dlib's example XMLs (the crop around the
68 annotations' bounds, MediaPipe's region rule) and on the same crop mirrored; the mirrored run's
points are flipped back (x -> 192 - x). Point i of the flipped-back run lies where point mirror[i]
of the plain run does: the map is the assignment (Hungarian) minimising the median distance over
the faces, in units of each face's outer-eye distance. Prints the assignment's residual, how many
points map to themselves (the midline), whether the map is an involution, and whether the two
halves of the faces give the same map.

    python tools/derive_mesh_mirror.py [--out PATH]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from occface_jax.faces.detect import to_float_rgb  # noqa: E402
from occface_jax.faces.face_mesh import (  # noqa: E402
    EYE_CORNERS,
    MIRROR_FILE,
    FaceMesh,
    crop_face,
    mirror_mesh,
    roi_from_box,
)
from occface_jax.faces.landmarks_io import dlib_xml_faces  # noqa: E402
from occface_jax.faces.mesh68 import NUM_MESH_POINTS  # noqa: E402
from occface_jax.paths import shared_dir  # noqa: E402


def face_crops(folder: Path) -> np.ndarray:
    """(F, 192, 192, 3) crops of every annotated face of the dlib XMLs in ``folder``."""
    crops, photos = [], {}
    for _, path, face in dlib_xml_faces(folder):
        if path not in photos:
            with Image.open(path) as img:
                photos[path] = to_float_rgb(np.asarray(img.convert("RGB")))
        points = np.asarray(face.landmarks, np.float64)
        box = np.concatenate([points.min(axis=0), points.max(axis=0)])
        crops.append(crop_face(photos[path], roi_from_box(box)))
    return np.stack(crops)


def mirror_cost(plain: np.ndarray, flipped_back: np.ndarray) -> np.ndarray:
    """(468, 468): mean over faces of |flipped_back[i] - plain[j]| / outer-eye distance, made
    symmetric (i -> j on the mirrored face means j -> i too)."""
    eye = np.linalg.norm(plain[:, EYE_CORNERS[0], :2] - plain[:, EYE_CORNERS[1], :2], axis=1)
    distance = np.linalg.norm(flipped_back[:, :, None, :2] - plain[:, None, :, :2], axis=-1)
    cost = np.mean(distance / eye[:, None, None], axis=0)
    return (cost + cost.T) / 2.0


def assign(cost: np.ndarray) -> np.ndarray:
    rows, cols = linear_sum_assignment(cost)
    return cols[np.argsort(rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=MIRROR_FILE)
    args = parser.parse_args()

    crops = face_crops(shared_dir() / "faces" / "dlib")
    mesh = FaceMesh()
    plain, _ = mesh.raw(crops)
    flipped, _ = mesh.raw(np.ascontiguousarray(crops[:, :, ::-1]))
    flipped_back = mirror_mesh(flipped, np.arange(NUM_MESH_POINTS))  # x flipped back, unpaired

    cost = mirror_cost(plain, flipped_back)
    mirror = assign(cost)
    residual = cost[np.arange(len(mirror)), mirror]
    half = len(crops) // 2
    halves = [assign(mirror_cost(plain[s], flipped_back[s])) for s in (slice(None, half), slice(half, None))]  # fmt: skip
    involution = bool(np.array_equal(mirror[mirror], np.arange(len(mirror))))
    print(f"{len(crops)} faces; residual (outer-eye distances): mean {residual.mean():.4f}, max {residual.max():.4f}")  # fmt: skip
    print(f"midline points (map to themselves): {int(np.sum(mirror == np.arange(len(mirror))))}; involution: {involution}")  # fmt: skip
    print(f"points where the two halves of the faces disagree: {int(np.sum(halves[0] != halves[1]))}; with the whole: {int(np.sum(halves[0] != mirror))}, {int(np.sum(halves[1] != mirror))}")  # fmt: skip
    if not involution:
        raise SystemExit("the assignment is not an involution: not written")
    np.savez(
        args.out,
        mirror=mirror.astype(np.int32),
        faces=np.asarray(len(crops)),
        residual_mean=np.asarray(residual.mean()),
        residual_max=np.asarray(residual.max()),
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
