"""Spherical-harmonics (9-band, order 2) Lambertian lighting with Deng et al.'s constants.

Irradiance at a surface with unit normal n (camera frame) is ``Y(n) @ gamma`` where ``Y`` is the
9-vector below (the Lambertian kernel's a_l times the real SH normalisation c_l, Deng et al.'s
``compute_color``) and gamma the 9 coefficients of a channel. Deng et al. add 0.8 to the first
(ambient) coefficient of every channel so that zero coefficients give a plausibly lit face; that offset
is the ``ambient`` parameter here. Light coefficients are (..., 27) for RGB, laid out channel-major
(r0..r8, g0..g8, b0..b8, as Deng et al.), or (..., 9) monochrome (the same for every channel).

Note: Deng et al.'s a_l for bands 1 and 2 (2 pi / sqrt 3, 2 pi / sqrt 8) are sqrt(3) and 2 sqrt(2)
times the exact half-cosine kernel's (2 pi / 3, pi / 4); we keep theirs so that their coefficients
(and checkpoints trained on them) mean the same here. ``Y / a_l`` is the orthonormal real SH basis.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

SH_A = (math.pi, 2.0 * math.pi / math.sqrt(3.0), 2.0 * math.pi / math.sqrt(8.0))
SH_C = (
    1.0 / math.sqrt(4.0 * math.pi),
    math.sqrt(3.0) / math.sqrt(4.0 * math.pi),
    3.0 * math.sqrt(5.0) / math.sqrt(12.0 * math.pi),
)
DENG_AMBIENT = 0.8


def sh_basis(normals: jax.Array) -> jax.Array:
    """The 9 SH basis values (..., 9) of unit normals (..., 3) (x, y, z in the camera frame)."""
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    k0, k1, k2 = SH_A[0] * SH_C[0], SH_A[1] * SH_C[1], SH_A[2] * SH_C[2]
    return jnp.stack(
        [
            jnp.full_like(x, k0),
            -k1 * y,
            k1 * z,
            -k1 * x,
            k2 * x * y,
            -k2 * y * z,
            0.5 * k2 / math.sqrt(3.0) * (3.0 * z * z - 1.0),
            -k2 * x * z,
            0.5 * k2 * (x * x - y * y),
        ],
        axis=-1,
    )


def light_matrix(light: jax.Array, ambient: float = DENG_AMBIENT) -> jax.Array:
    """(..., 9, 3) per-channel SH coefficients from (..., 27) channel-major or (..., 9) monochrome,
    with ``ambient`` added to the first coefficient of each channel."""
    light = jnp.asarray(light)
    if light.shape[-1] == 27:
        gamma = jnp.swapaxes(light.reshape(light.shape[:-1] + (3, 9)), -1, -2)
    elif light.shape[-1] == 9:
        gamma = jnp.repeat(light[..., :, None], 3, axis=-1)
    else:
        raise ValueError(
            f"light must have 27 (RGB) or 9 (mono) coefficients, got {light.shape[-1]}"
        )
    return gamma.at[..., 0, :].add(ambient)


def irradiance(normals: jax.Array, light: jax.Array, ambient: float = DENG_AMBIENT) -> jax.Array:
    """Per-channel irradiance (..., P, 3) at unit normals (..., P, 3) (camera frame) under ``light``
    ((..., 27) or (..., 9), batch axes matching the normals' leading axes)."""
    gamma = light_matrix(light, ambient)
    return jnp.einsum("...pk,...kc->...pc", sh_basis(normals), gamma)


def shade(
    albedo: jax.Array, normals: jax.Array, light: jax.Array, ambient: float = DENG_AMBIENT
) -> jax.Array:
    """Lambertian SH colour ``albedo * irradiance`` (..., P, 3); works per vertex (P = N) or per pixel
    (flatten H, W into P, or pass (..., H, W, 3) with ``light`` given an extra axis)."""
    return albedo * irradiance(normals, light, ambient)
