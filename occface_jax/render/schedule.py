"""How a batch of images goes through the renderer: all at once, or a few images at a time.

The rendering functions (``rasterize``, ``interpolate``, ``antialias``) take ``images_per_pass``:
how many images of a batch one pass of their work covers. The result is the same either way (the
passes are independent); only the schedule differs:

- On a GPU one pass over the whole batch is fastest: the batch is parallel work.
- On the CPU it is not. The buffers of a whole batch (B z-buffers, B x F triangle tables, B x H x W
  pixel terms) outgrow the caches, and XLA's CPU backend gains little from the extra width.
  Measured on a 2-core x86_64 box, 224 px, the default face model at batch 8: forward 16 ms per
  image in one pass against 12 ms one image at a time (``tools/results/bench_render.md``).

So the default is one image per pass on the CPU and the whole batch elsewhere. The passes run one
after another in a ``lax.map`` (a loop in the compiled graph, differentiable like any scan).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp


def default_images_per_pass() -> int | None:
    """Images per pass when the caller does not say: 1 on the CPU, None (the whole batch) else."""
    return 1 if jax.default_backend() == "cpu" else None


def resolve_images_per_pass(images_per_pass: int | None, n_images: int) -> int:
    """The number of images one pass covers, between 1 and ``n_images``: ``images_per_pass`` if
    given (>= 1), else :func:`default_images_per_pass`."""
    if images_per_pass is None:
        images_per_pass = default_images_per_pass()
    elif int(images_per_pass) < 1:
        raise ValueError(f"images_per_pass must be >= 1 or None, not {images_per_pass}")
    n_images = max(int(n_images), 1)
    return n_images if images_per_pass is None else min(int(images_per_pass), n_images)


def map_images(fn: Callable[..., Any], arrays: Sequence[jax.Array], images_per_pass: int) -> Any:
    """``fn`` over groups of ``images_per_pass`` images, one group after another.

    ``arrays`` share a leading image axis of length n; ``fn`` takes one group (k, ...) of each and
    returns a pytree of arrays with a leading axis k. Returns the same pytree with axis n, as if
    ``fn`` had been called on all n images at once. A last, partial group is padded with copies of
    the last image (their results are dropped).
    """
    n_images = arrays[0].shape[0]
    if images_per_pass >= n_images:
        return fn(*arrays)
    n_groups = -(-n_images // images_per_pass)
    pad = n_groups * images_per_pass - n_images

    def grouped(a: jax.Array) -> jax.Array:
        if pad:
            a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])
        return a.reshape((n_groups, images_per_pass) + a.shape[1:])

    out = jax.lax.map(lambda group: fn(*group), tuple(grouped(a) for a in arrays))
    return jax.tree.map(
        lambda o: o.reshape((n_groups * images_per_pass,) + o.shape[2:])[:n_images], out
    )
