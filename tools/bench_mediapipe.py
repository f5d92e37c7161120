"""Milliseconds per face of MediaPipe's face networks on this CPU: the jitted JAX/Flax forward pass
(after compilation) against Google's LiteRT interpreter on the same ``.tflite`` file; one table on
stdout.

    python tools/bench_mediapipe.py [--repeats 50] [--threads 1] [--batch 8]

Network forward passes only (no letterboxing, decoding or cropping), on random inputs of each model's
size. JAX runs batch 1 and ``--batch``; LiteRT runs one face at a time with ``--threads`` threads
(XNNPACK delegate, its default). Set XLA's thread count with e.g.
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` to compare single-threaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from occface_jax.models import blazeface, face_mesh, iris  # noqa: E402


def time_call(fn, repeats: int) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` calls, after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def jax_ms_per_face(net: nnx.Module, size: int, batch: int, repeats: int) -> float:
    graphdef, state = nnx.split(net)
    forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (batch, size, size, 3)), jnp.float32)
    return time_call(lambda: jax.block_until_ready(forward(state, x)), repeats) / batch


def litert_ms_per_face(path, size: int, threads: int, repeats: int) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    x = np.random.default_rng(0).uniform(0, 1, (1, size, size, 3)).astype(np.float32)

    def run() -> None:
        interpreter.set_tensor(index, x)
        interpreter.invoke()

    return time_call(run, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    models = [
        ("BlazeFace short (128)", blazeface.load_blazeface("short"), 128,
         blazeface.default_tflite_path("short")),
        ("BlazeFace full (192)", blazeface.load_blazeface("full"), 192,
         blazeface.default_tflite_path("full")),
        ("face mesh (192)", face_mesh.load_face_mesh(), 192, face_mesh.default_tflite_path()),
        ("iris (64)", iris.load_iris(), 64, iris.default_tflite_path()),
    ]  # fmt: skip
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}"
    )
    header = f"| network | JAX ms/face (batch 1) | JAX ms/face (batch {args.batch}) | LiteRT ms/face ({args.threads} thread) |"
    print(header)
    print("|---|---:|---:|---:|")
    for name, net, size, path in models:
        one = jax_ms_per_face(net, size, 1, args.repeats)
        many = jax_ms_per_face(net, size, args.batch, max(5, args.repeats // args.batch))
        lite = litert_ms_per_face(path, size, args.threads, args.repeats)
        print(f"| {name} | {one:.2f} | {many:.2f} | {lite:.2f} |")
    # MediaPipe runs the iris network on both eyes of each face: one batch of 2 against 2 calls.
    net = iris.load_iris()
    pair = jax_ms_per_face(net, 64, 2, args.repeats) * 2
    lite = 2 * litert_ms_per_face(iris.default_tflite_path(), 64, args.threads, args.repeats)
    print(f"| iris, ms per eye pair (JAX batch 2, LiteRT 2 calls) | {pair:.2f} | | {lite:.2f} |")


if __name__ == "__main__":
    main()
