"""Benchmark the pure-JAX renderer against OpenGL (moderngl / Mesa llvmpipe) at 224 x 224.

Prints one table of milliseconds per frame (median over rounds after compilation; in each round
every column is timed once, one after another, so a slow spell of the machine hits all) for:
- jax raster: ``rasterize`` alone (triangle ids, barycentrics, depth);
- jax forward: rasterize + interpolate (RGB vertex colours) + antialias, i.e. a shaded image;
- jax fwd+bwd: the same plus the gradient of a scalar image loss w.r.t. positions and colours;
- gl forward: moderngl with the same clip positions and vertex colours, depth test on, RGBA float
  colour read back to the host (llvmpipe on a CPU);
for batch 1 and 8, on the default face model (17,202 vertices / 34,332 triangles) and a face-shaped
mesh of BFM-front size (35,709 vertices / 70,789 triangles). Run: python tools/bench_render.py
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.render import antialias, edge_adjacency, interpolate, rasterize
from occface_jax.render.camera import deng_camera, perspective_clip, rigid_transform

SIZE = 224


def bfm_sized_mesh(
    n_vertices: int = 35709, n_triangles: int = 70789
) -> tuple[np.ndarray, np.ndarray]:
    """A face-shaped (half-ellipsoid, 150 x 200 x 100 mm) grid mesh with exactly the given counts."""
    rows, cols = 189, 190  # 35,910 vertices, 71,064 triangles before trimming
    v, u = np.meshgrid(np.linspace(-1.2, 1.2, rows), np.linspace(-1.3, 1.3, cols), indexing="ij")
    vertices = np.stack([75 * np.sin(u), 100 * np.sin(v), 60 * np.cos(u) * np.cos(v)], -1)
    vertices = vertices.reshape(-1, 3)[:n_vertices].astype(np.float32)
    idx = np.arange(rows * cols).reshape(rows, cols)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    triangles = np.concatenate([np.stack([a, c, b], -1), np.stack([b, c, d], -1)], 0).reshape(-1, 3)
    triangles = triangles[(triangles < n_vertices).all(1)]
    if len(triangles) < n_triangles:  # pad with repeats (drawn twice, as a z-tie)
        triangles = np.concatenate([triangles, triangles[: n_triangles - len(triangles)]])
    return vertices, triangles[:n_triangles].astype(np.int32)


def default_mesh() -> tuple[np.ndarray, np.ndarray]:
    from occface_jax.morphable import load_model

    model = load_model()
    return np.asarray(model.mean_shape), np.asarray(model.triangles)


def frames(vertices: np.ndarray, batch: int) -> tuple[jax.Array, jax.Array]:
    """The frames of one cell: clip positions (B, N, 4) of the mesh under random poses at 224 px,
    and random vertex colours (B, N, 3) in [0, 1] (the same for JAX and OpenGL)."""
    angles = jnp.asarray(np.random.default_rng(0).normal(0, 0.2, (batch, 3)), jnp.float32)
    clip = perspective_clip(rigid_transform(jnp.asarray(vertices), angles), deng_camera(SIZE))
    colours = jnp.asarray(
        np.random.default_rng(1).uniform(0, 1, (batch,) + vertices.shape), jnp.float32
    )
    return clip, colours


def jax_functions(vertices, triangles, batch: int) -> dict[str, Callable[[], Any]]:
    """The three jitted JAX measurements of one cell, as calls that block until done."""
    clip, colours = frames(vertices, batch)
    tri = jnp.asarray(triangles)
    adjacency = jnp.asarray(edge_adjacency(triangles))

    def forward(c, col):
        raster = rasterize(c, tri, (SIZE, SIZE))
        return antialias(interpolate(col, raster, tri), raster, c, tri, adjacency)

    raster_only = jax.jit(lambda c: rasterize(c, tri, (SIZE, SIZE)))
    fwd = jax.jit(forward)
    fwd_bwd = jax.jit(jax.value_and_grad(lambda c, col: jnp.sum(forward(c, col) ** 2), (0, 1)))
    return {
        "jax raster": lambda: jax.block_until_ready(raster_only(clip)),
        "jax forward": lambda: jax.block_until_ready(fwd(clip, colours)),
        "jax fwd+bwd": lambda: jax.block_until_ready(fwd_bwd(clip, colours)),
    }


class GLFrames:
    """moderngl (llvmpipe on a CPU) drawing the same frames: clip positions and vertex colours
    uploaded, depth test on, RGBA float colour read back to the host; ``__call__`` draws a batch."""

    def __init__(self, vertices, triangles, batch: int):
        import moderngl

        self.ctx = moderngl.create_standalone_context(backend="egl")
        program = self.ctx.program(
            vertex_shader="""#version 330
            in vec4 in_pos; in vec3 in_col; out vec3 v_col;
            void main() { gl_Position = in_pos; v_col = in_col; }""",
            fragment_shader="""#version 330
            in vec3 v_col; out vec4 out_col;
            void main() { out_col = vec4(v_col, 1.0); }""",
        )
        clips, colours = frames(vertices, batch)
        self.clips = np.asarray(clips, np.float32)
        self.colours = np.asarray(colours, np.float32)
        self.vbo = self.ctx.buffer(reserve=self.clips[0].nbytes)
        self.cbo = self.ctx.buffer(reserve=self.colours[0].nbytes)
        ibo = self.ctx.buffer(triangles.astype(np.int32).tobytes())
        self.vao = self.ctx.vertex_array(
            program,
            [(self.vbo, "4f", "in_pos"), (self.cbo, "3f", "in_col")],
            index_buffer=ibo,
            index_element_size=4,
        )
        self.fbo = self.ctx.framebuffer(
            [self.ctx.renderbuffer((SIZE, SIZE), components=4, dtype="f4")],
            self.ctx.depth_renderbuffer((SIZE, SIZE)),
        )
        self.fbo.use()
        self.ctx.enable(moderngl.DEPTH_TEST)

    def __call__(self) -> None:
        import moderngl

        for clip, colour in zip(self.clips, self.colours, strict=True):
            self.vbo.write(clip.tobytes())
            self.cbo.write(colour.tobytes())
            self.fbo.clear(depth=1.0)
            self.vao.render(moderngl.TRIANGLES)
            self.fbo.read(components=4, dtype="f4")

    def release(self) -> None:
        self.ctx.release()


def interleaved_timings(functions: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median milliseconds per call of each function, timed round-robin (one call of each per
    round, after one warm-up call), so that a slow spell of a shared machine hits every column."""
    for fn in functions.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) * 1e3 for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="rounds of interleaved timing")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    meshes = {"default (34k tri)": default_mesh(), "BFM-size (70k tri)": bfm_sized_mesh()}
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"jax {jax.__version__} on {jax.devices()[0].platform}, {SIZE}x{SIZE}, "
        f"ms/frame (median of {args.repeats} interleaved rounds), "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    header = [
        "mesh",
        "batch",
        "jax raster",
        "jax forward",
        "jax fwd+bwd",
        "gl forward",
        "fwd / gl",
        "fwd+bwd / gl",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, (vertices, triangles) in meshes.items():
        for batch in args.batches:
            functions = jax_functions(vertices, triangles, batch)
            gl = None
            try:
                gl = GLFrames(vertices, triangles, batch)
                functions["gl forward"] = gl
            except Exception as err:  # no OpenGL here
                print(f"(no OpenGL: {err})")
            t = interleaved_timings(functions, args.repeats)
            if gl is not None:
                gl.release()
            t = {k: v / batch for k, v in t.items()}
            gl_ms = t.get("gl forward", float("nan"))
            row = [name, str(batch)] + [f"{t[k]:.1f}" for k in header[2:5]] + [f"{gl_ms:.1f}"]
            row += [f"{t['jax forward'] / gl_ms:.1f}x", f"{t['jax fwd+bwd'] / gl_ms:.1f}x"]
            print("| " + " | ".join(row) + " |", flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
