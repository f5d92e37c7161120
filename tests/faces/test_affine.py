"""JAX 2-D affine helpers against closed forms: similarity fit, inverse, integer-shift warps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from occface_jax.faces.affine import (
    compose_affine,
    fit_similarity,
    invert_affine,
    random_similarity,
    warp_affine,
)


def _similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_fit_similarity_recovers_a_known_similarity_and_inverts():
    rng = np.random.default_rng(3)
    source = rng.uniform(0, 100, size=(2, 9, 2))
    truth = np.stack([_similarity(0.4, 1.7, (5.0, -3.0)), _similarity(-2.0, 0.3, (40.0, 7.0))])
    target = np.einsum("bij,bpj->bpi", truth[:, :, :2], source) + truth[:, None, :, 2]
    fitted = np.asarray(fit_similarity(jnp.asarray(source), jnp.asarray(target)))
    np.testing.assert_allclose(fitted, truth, atol=1e-4)
    round_trip = compose_affine(jnp.asarray(fitted), invert_affine(jnp.asarray(fitted)))
    np.testing.assert_allclose(round_trip, np.tile(np.eye(2, 3), (2, 1, 1)), atol=1e-5)


def test_warp_affine_matches_an_exact_integer_shift_and_has_gradients():
    rng = np.random.default_rng(4)
    image = jnp.asarray(rng.uniform(size=(12, 10, 3)), jnp.float32)
    shift = jnp.array([[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]])  # output (x, y) reads input (x+2, y+3)
    out = warp_affine(image, shift, (12, 10))
    np.testing.assert_allclose(out[:9, :8], image[3:, 2:], atol=1e-6)
    assert float(jnp.abs(out[9:]).max()) == 0.0  # outside the input: zeros
    as_uint8 = warp_affine(jnp.asarray(np.asarray(image) * 255, jnp.uint8), shift, (12, 10))
    np.testing.assert_allclose(
        as_uint8[:9, :8], np.floor(np.asarray(image[3:, 2:]) * 255), atol=1e-4
    )
    grad = jax.grad(lambda im: jnp.sum(warp_affine(im, shift * 0.9, (12, 10)) ** 2))(image)
    assert np.isfinite(grad).all() and float(jnp.abs(grad).max()) > 0


def test_random_similarity_stays_within_its_ranges_and_is_the_identity_at_zero():
    keys = jax.random.split(jax.random.key(0), 256)
    size, shift, scale, rotation = 100.0, 8.0, 0.1, 10.0
    m = np.asarray(jax.vmap(lambda k: random_similarity(k, size, shift, scale, rotation))(keys))
    factor = np.sqrt(np.linalg.det(m[:, :, :2]))
    angle = np.degrees(np.arctan2(m[:, 1, 0], m[:, 0, 0]))
    centre = np.full(2, size / 2)
    moved_centre = m[:, :, :2] @ centre + m[:, :, 2]
    assert np.all(np.abs(factor - 1) <= scale + 1e-6) and np.ptp(factor) > scale
    assert np.all(np.abs(angle) <= rotation + 1e-4) and np.ptp(angle) > rotation
    assert np.all(np.abs(moved_centre - centre) <= shift + 1e-4)
    assert np.ptp(moved_centre[:, 0]) > shift and np.ptp(moved_centre[:, 1]) > shift
    # a similarity: A = [[a, -b], [b, a]]
    np.testing.assert_allclose(m[:, 0, 0], m[:, 1, 1], atol=1e-6)
    np.testing.assert_allclose(m[:, 0, 1], -m[:, 1, 0], atol=1e-6)
    identity = np.asarray(random_similarity(keys[0], size, 0.0, 0.0, 0.0))
    np.testing.assert_allclose(identity, [[1, 0, 0], [0, 1, 0]], atol=1e-5)
