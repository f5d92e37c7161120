"""Benchmark the pure-JAX renderer against OpenGL (moderngl / Mesa llvmpipe) at 224 x 224.

Prints one table of milliseconds per frame (median of repeated runs after compilation) for:
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


def _time(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def jax_timings(vertices, triangles, batch: int, repeats: int) -> dict[str, float]:
    angles = jnp.asarray(np.random.default_rng(0).normal(0, 0.2, (batch, 3)), jnp.float32)
    clip = perspective_clip(rigid_transform(jnp.asarray(vertices), angles), deng_camera(SIZE))
    colours = jnp.asarray(
        np.random.default_rng(1).uniform(0, 1, (batch,) + vertices.shape), jnp.float32
    )
    tri = jnp.asarray(triangles)
    adjacency = jnp.asarray(edge_adjacency(triangles))

    def forward(c, col):
        raster = rasterize(c, tri, (SIZE, SIZE))
        return antialias(interpolate(col, raster, tri), raster, c, tri, adjacency)

    raster_only = jax.jit(lambda c: rasterize(c, tri, (SIZE, SIZE)))
    fwd = jax.jit(forward)
    fwd_bwd = jax.jit(jax.value_and_grad(lambda c, col: jnp.sum(forward(c, col) ** 2), (0, 1)))
    return {
        "jax raster": _time(raster_only, clip, repeats=repeats) / batch,
        "jax forward": _time(fwd, clip, colours, repeats=repeats) / batch,
        "jax fwd+bwd": _time(fwd_bwd, clip, colours, repeats=repeats) / batch,
    }


def gl_timing(vertices, triangles, batch: int, repeats: int) -> float:
    import moderngl

    ctx = moderngl.create_standalone_context(backend="egl")
    program = ctx.program(
        vertex_shader="""#version 330
        in vec4 in_pos; in vec3 in_col; out vec3 v_col;
        void main() { gl_Position = in_pos; v_col = in_col; }""",
        fragment_shader="""#version 330
        in vec3 v_col; out vec4 out_col;
        void main() { out_col = vec4(v_col, 1.0); }""",
    )
    angles = np.random.default_rng(0).normal(0, 0.2, (batch, 3)).astype(np.float32)
    clips = np.asarray(
        perspective_clip(
            rigid_transform(jnp.asarray(vertices), jnp.asarray(angles)), deng_camera(SIZE)
        ),
        np.float32,
    )
    colours = np.random.default_rng(1).uniform(0, 1, (batch,) + vertices.shape).astype(np.float32)
    vbo = ctx.buffer(reserve=clips[0].nbytes)
    cbo = ctx.buffer(reserve=colours[0].nbytes)
    ibo = ctx.buffer(triangles.astype(np.int32).tobytes())
    vao = ctx.vertex_array(
        program,
        [(vbo, "4f", "in_pos"), (cbo, "3f", "in_col")],
        index_buffer=ibo,
        index_element_size=4,
    )
    fbo = ctx.framebuffer(
        [ctx.renderbuffer((SIZE, SIZE), components=4, dtype="f4")],
        ctx.depth_renderbuffer((SIZE, SIZE)),
    )
    fbo.use()
    ctx.enable(moderngl.DEPTH_TEST)

    def frames():
        for b in range(batch):
            vbo.write(clips[b].tobytes())
            cbo.write(colours[b].tobytes())
            fbo.clear(depth=1.0)
            vao.render(moderngl.TRIANGLES)
            fbo.read(components=4, dtype="f4")

    frames()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        frames()
        times.append(time.perf_counter() - start)
    ctx.release()
    return float(np.median(times)) * 1e3 / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    meshes = {"default (34k tri)": default_mesh(), "BFM-size (70k tri)": bfm_sized_mesh()}
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
        f"jax {jax.__version__} on {jax.devices()[0].platform}, {SIZE}x{SIZE}, ms/frame (median), "
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
            t = jax_timings(vertices, triangles, batch, args.repeats)
            try:
                gl = gl_timing(vertices, triangles, batch, args.repeats)
            except Exception as err:  # no OpenGL here
                print(f"(no OpenGL: {err})")
                gl = float("nan")
            row = [name, str(batch)] + [f"{t[k]:.1f}" for k in header[2:5]] + [f"{gl:.1f}"]
            row += [f"{t['jax forward'] / gl:.1f}x", f"{t['jax fwd+bwd'] / gl:.1f}x"]
            print("| " + " | ".join(row) + " |", flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
