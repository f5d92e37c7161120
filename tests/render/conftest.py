"""Fixtures for the renderer tests: an independent OpenGL reference (moderngl, Mesa llvmpipe via EGL)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

_VERTEX = """#version 330
in vec4 in_pos;
void main() { gl_Position = in_pos; }
"""
_FRAGMENT = """#version 330
layout(location = 0) out int out_id;
layout(location = 1) out float out_depth;
void main() { out_id = gl_PrimitiveID + 1; out_depth = gl_FragCoord.z; }
"""


@pytest.fixture(scope="session")
def gl_rasterize() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``gl_rasterize(clip (N, 4), triangles (F, 3), (H, W), cull_back=False)`` -> (triangle ids (H, W)
    with -1 empty, window depth (H, W) in [0, 1]) in top-left-origin image rows, rendered by OpenGL with
    the same clip-space positions. Skips when no OpenGL context can be created."""
    moderngl = pytest.importorskip(
        "moderngl", reason="moderngl (the OpenGL reference) not installed"
    )
    try:
        ctx = moderngl.create_standalone_context(backend="egl")
    except Exception as err:  # no EGL / no Mesa on this machine
        pytest.skip(f"no OpenGL context (EGL): {err}")
    program = ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)

    def run(clip, triangles, image_size, cull_back: bool = False):
        height, width = image_size
        vbo = ctx.buffer(np.ascontiguousarray(clip, np.float32).tobytes())
        ibo = ctx.buffer(np.ascontiguousarray(triangles, np.int32).tobytes())
        vao = ctx.vertex_array(
            program, [(vbo, "4f", "in_pos")], index_buffer=ibo, index_element_size=4
        )
        ids = ctx.renderbuffer((width, height), components=1, dtype="i4")
        depth = ctx.renderbuffer((width, height), components=1, dtype="f4")
        fbo = ctx.framebuffer([ids, depth], ctx.depth_renderbuffer((width, height)))
        fbo.use()
        ctx.viewport = (0, 0, width, height)
        ctx.enable(moderngl.DEPTH_TEST)
        if cull_back:
            ctx.enable(moderngl.CULL_FACE)
            ctx.front_face = "ccw"
            ctx.cull_face = "back"
        else:
            ctx.disable(moderngl.CULL_FACE)
        fbo.clear(depth=1.0)
        vao.render(moderngl.TRIANGLES)
        out_ids = np.frombuffer(fbo.read(attachment=0, components=1, dtype="i4"), np.int32)
        out_depth = np.frombuffer(fbo.read(attachment=1, components=1, dtype="f4"), np.float32)
        for obj in (vao, fbo, ids, depth, vbo, ibo):
            obj.release()
        # OpenGL's row 0 is the bottom of the image.
        return (
            out_ids.reshape(height, width)[::-1] - 1,
            out_depth.reshape(height, width)[::-1].copy(),
        )

    return run
