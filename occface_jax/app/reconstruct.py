"""``occface reconstruct`` and ``occface demo``: batches of photos to folders of results.

For each input NAME: ``OUT/NAME/`` holds mesh.obj (+ mesh.mtl and texture.png when the model has
UVs; vertex colours otherwise), mesh.ply, coeffs.npz, landmarks.json, mask.png, deoccluded.png,
overlay.png and report.png (see ``pipeline.write_outputs``);
``OUT/summary.json`` lists every input with its status, error message, seconds and, per face, the
detector that found it, the landmark source and the files. A bad input
(not an image, truncated, tiny, no face) is one line in the summary and on the console; the batch goes
on. Exit status: 0 all succeeded, 1 any failed.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import ml_collections
import numpy as np
from skimage import data
from tqdm.auto import tqdm

from occface_jax.app.pipeline import Reconstructor, write_outputs
from occface_jax.app.predictors import MaskPredictor
from occface_jax.data.augment import occlude_photo
from occface_jax.data.occluders import OcclusionConfig
from occface_jax.errors import OccfaceError
from occface_jax.faces.detect import FaceDetector, box_iou
from occface_jax.io import images as imageio
from occface_jax.io import mesh as export
from occface_jax.morphable import load_model


def _safe_name(path: Path, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem) or "image"
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def run(
    inputs: list[str],
    out_dir: Path,
    model_path: str | None,
    config: ml_collections.ConfigDict,
    all_faces: bool = False,
    checkpoints: str | None = None,
    progress: bool = True,
    debug: bool = False,
) -> int:
    """Reconstruct every input; write per-image folders and summary.json; return the exit status."""
    if checkpoints is not None and not Path(checkpoints).is_dir():
        raise OccfaceError(f"--checkpoints {checkpoints}: no such folder")
    mask_predictor = None
    if checkpoints is not None:
        mask_predictor = MaskPredictor.from_checkpoints(checkpoints)
    paths, problems = imageio.find_images(inputs)
    if not paths and problems:
        raise OccfaceError("; ".join(f"{item}: {why}" for item, why in problems))
    model = load_model(model_path, fetch=model_path is None)
    reconstructor = Reconstructor(model, config, all_faces=all_faces, mask_predictor=mask_predictor)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = [{"input": item, "status": "failed", "error": why} for item, why in problems]
    for item, why in problems:
        print(f"occface reconstruct: {item}: {why}", file=sys.stderr)
    taken: set[str] = set()
    bar = tqdm(paths, desc="reconstructing", unit="image", disable=not progress)
    for path in bar:
        name = _safe_name(path, taken)
        start = time.perf_counter()
        entry: dict = {"input": str(path), "name": name}
        try:
            results = reconstructor(path)
            entry["faces"] = []
            for k, rec in enumerate(results):
                folder = out_dir / (name if k == 0 else f"{name}_face{k}")
                entry["faces"].append(
                    {
                        "folder": str(folder),
                        "detector": rec.detector,
                        "landmarks": rec.landmark_source,
                        "files": write_outputs(rec, folder, model),
                    }
                )
            entry["status"] = "ok"
        except OccfaceError as err:
            entry.update(status="failed", error=str(err))
        except Exception as err:  # noqa: BLE001 - one bad image never stops the batch
            if debug:
                raise
            entry.update(status="failed", error=f"{type(err).__name__}: {err}")
        entry["seconds"] = round(time.perf_counter() - start, 3)
        if entry["status"] != "ok":
            error = entry["error"]
            line = error if str(path) in error else f"{path}: {error}"
            tqdm.write(f"occface reconstruct: {line}", file=sys.stderr)
        entries.append(entry)
    n_ok = sum(e["status"] == "ok" for e in entries)
    seconds = [e["seconds"] for e in entries if e["status"] == "ok"]
    export.write_json(
        out_dir / "summary.json",
        {
            "succeeded": n_ok,
            "failed": len(entries) - n_ok,
            "median_seconds": float(np.median(seconds)) if seconds else None,
            "model": model.summary(),
            "config": config.to_dict(),
            "images": entries,
        },
    )
    print(f"{n_ok} of {len(entries)} image(s) reconstructed into {out_dir} (summary.json)")
    return 0 if n_ok == len(entries) else 1


def make_demo_image(out_path: Path, seed: int = 0, tries: int = 20) -> Path:
    """scikit-image's public-domain astronaut portrait with an occluder drawn by the data engine
    (a cup, food or a microphone) pasted over the lower face. Seeds are tried in order until the
    face detector still finds the face (a face detector that cannot see the face leaves nothing to
    reconstruct; that case is reported, not hidden, for user photos)."""
    photo = data.astronaut().astype(np.float32) / 255.0
    detector = FaceDetector()
    face = detector.detect(photo)[0]
    config = OcclusionConfig(
        kinds=("cup", "food", "microphone"), count=(1, 1), coverage=(0.15, 0.3)
    )
    for k in range(tries):
        occluded = occlude_photo(
            photo, np.random.default_rng(seed + k), landmarks=face.landmarks, config=config
        )["occluded"]
        found = detector.boxes(occluded)
        if any(box_iou(box, face.box) > 0.5 for box, _, _ in found):
            break
    return imageio.save_image(out_path, occluded)


def demo(
    out_dir: Path,
    model_path: str | None,
    config: ml_collections.ConfigDict,
    checkpoints: str | None = None,
    progress: bool = True,
    debug: bool = False,
) -> int:
    """Make the occluded astronaut, reconstruct it into ``out_dir`` (with the trained networks in
    ``checkpoints`` when given), print the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    image = make_demo_image(out_dir / "astronaut_occluded.png")
    print(f"input: {image}")
    status = run(
        [str(image)],
        out_dir,
        model_path,
        config,
        checkpoints=checkpoints,
        progress=progress,
        debug=debug,
    )
    folder = out_dir / "astronaut_occluded"
    names = ("report.png", "mesh.obj", "texture.png", "mesh.ply", "overlay.png", "deoccluded.png")
    for name in (*names, "mask.png"):
        if (folder / name).exists():
            print(f"  {folder / name}")
    return status
