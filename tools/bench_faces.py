"""Milliseconds per face on the CPU: detection (dlib HOG; CNN with --cnn), 68 landmarks, the Flax
identity network (jit, batch 1 and 32, after warm-up), JAX chip + embedding, and dlib's own descriptor.

Run: ``JAX_PLATFORMS=cpu python tools/bench_faces.py [--cnn] [--repeats N]``. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image

from occface_jax.extras import dlib_model_path, import_dlib
from occface_jax.faces.detect import FaceDetector, dlib_shape
from occface_jax.losses.identity import embed_faces
from occface_jax.models.face_id import load_face_id_net
from occface_jax.paths import shared_dir


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds (results blocked on for JAX)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cnn", action="store_true", help="also time dlib's CNN detector")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root = shared_dir()
    if root is None:
        print("shared data folder not found (set OCCFACE_SHARED)")
        return 1
    dlib = import_dlib()
    image = np.asarray(Image.open(root / "faces" / "skimage" / "astronaut.png").convert("RGB"))
    rows: list[tuple[str, str, float]] = []
    size = f"{image.shape[1]}x{image.shape[0]}"

    hog = FaceDetector("hog", upsample=0)
    for upsample in (0, 1):
        hog.upsample = upsample
        rows.append(
            (
                f"HOG detection, upsample {upsample}",
                size,
                median_ms(lambda: hog.boxes(image), args.repeats),
            )
        )
    if args.cnn:
        cnn = FaceDetector("cnn", upsample=0)
        rows.append(
            ("CNN (MMOD) detection, upsample 0", size, median_ms(lambda: cnn.boxes(image), 3))
        )
    hog.upsample = 1
    face = hog.detect(image)[0]
    rows.append(
        (
            "68 landmarks (shape predictor)",
            "1 face",
            median_ms(lambda: hog.landmarks(image, face.box), 20),
        )
    )

    net = load_face_id_net()
    graphdef, state = nnx.split(net)

    @jax.jit
    def embed(state: nnx.State, chips: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, state)(chips)

    @jax.jit
    def chip_and_embed(state: nnx.State, images: jax.Array, landmarks: jax.Array) -> jax.Array:
        return embed_faces(nnx.merge(graphdef, state), images, landmarks)

    recognizer = dlib.face_recognition_model_v1(str(dlib_model_path("face_recognition")))
    shape = dlib_shape(face.box, face.landmarks)
    chip = dlib.get_face_chip(image, shape, 150, 0.25)
    for batch in (1, 32):
        chips = jnp.asarray(np.repeat(chip[None], batch, 0), jnp.float32) / 255.0
        embed(state, chips).block_until_ready()  # compile
        ms = median_ms(lambda c=chips: embed(state, c), args.repeats)
        rows.append((f"Flax embedding (jit), batch {batch}", "per face", ms / batch))
        images = jnp.asarray(np.repeat(image[None], batch, 0), jnp.float32) / 255.0
        landmarks = jnp.asarray(np.repeat(face.landmarks[None], batch, 0), jnp.float32)
        chip_and_embed(state, images, landmarks).block_until_ready()
        ms = median_ms(lambda i=images, m=landmarks: chip_and_embed(state, i, m), args.repeats)
        rows.append((f"JAX chip + Flax embedding (jit), batch {batch}", "per face", ms / batch))
        chip_list = [chip] * batch
        ms = median_ms(lambda cl=chip_list: recognizer.compute_face_descriptor(cl), args.repeats)
        rows.append((f"dlib compute_face_descriptor, batch {batch}", "per face", ms / batch))

    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPU cores")
    print("| step | input | ms |")
    print("| --- | --- | ---: |")
    for name, what, ms in rows:
        print(f"| {name} | {what} | {ms:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
