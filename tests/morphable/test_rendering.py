"""render(): conventions, gradients (pose, light) against finite differences, and pose recovery by fitting."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import trimesh

from occface_jax.morphable import CoeffLayout
from occface_jax.morphable.rendering import render
from occface_jax.render import (
    antialias,
    deng_camera,
    edge_adjacency,
    euler_to_rotation,
    interpolate,
    perspective_clip,
    rasterize,
    rigid_transform,
    shade,
)

SIZE = 64


@pytest.fixture(scope="module")
def model(default_model):
    return default_model.to_jax()


def _coeffs(model, angles=(0.1, 0.3, 0.05), translation=(0.05, -0.1, 0.0)):
    coeffs = CoeffLayout.for_model(model).zeros()
    light = np.zeros(27, np.float32)
    light[[1, 3, 10, 12, 19, 21]] = [0.3, -0.25, 0.3, -0.25, 0.3, -0.25]  # a light from the side
    coeffs.update(
        angles=jnp.asarray(angles), translation=jnp.asarray(translation), light=jnp.asarray(light)
    )
    return coeffs


def test_landmarks_and_depth_follow_the_camera(model):
    coeffs = _coeffs(model, angles=(0.0, 0.2, 0.0), translation=(0.0, 0.0, 0.0))
    out = jax.jit(lambda c: render(model, c, image_size=SIZE))(coeffs)
    world = rigid_transform(model.mean_shape, coeffs["angles"], coeffs["translation"])
    nose_tip = np.asarray(world[model.landmarks68[30]])  # iBUG 30: nose tip, visible
    x, y = np.asarray(out.landmarks[30])
    focal = 1015.0 * SIZE / 224
    assert x == pytest.approx(SIZE / 2 + focal * nose_tip[0] / (10 - nose_tip[2]), abs=1e-3)
    assert y == pytest.approx(SIZE / 2 - focal * nose_tip[1] / (10 - nose_tip[2]), abs=1e-3)
    # The surface depth at the nose-tip pixel is the nose tip's distance from the eye plane (mm).
    depth = float(out.depth[int(y), int(x)])
    assert depth == pytest.approx((10 - nose_tip[2]) * 100, abs=3.0)
    assert out.image.shape == (SIZE, SIZE, 3) and out.mask.shape == (SIZE, SIZE)
    assert 0.1 < float(out.mask.mean()) < 0.95


def test_same_image_eager_and_under_grad(model):
    """The silhouette walk's discrete decisions do not depend on how XLA compiles the graph: an
    eager render and the jitted forward+backward graph agree to float rounding (a flipped decision
    moves an outline pixel by a large fraction of the colour step; this pose had one at 0.036)."""
    coeffs = _coeffs(model)

    def draw(c):
        out = render(model, c, image_size=SIZE)
        return jnp.concatenate([out.image, out.mask[..., None]], axis=-1)

    def loss(c):
        image = draw(c)
        return jnp.sum(image**2), image

    eager = np.asarray(draw(coeffs))
    (_, under_grad), _ = jax.jit(jax.value_and_grad(loss, has_aux=True))(coeffs)
    outline = (eager[..., 3] > 0.01) & (eager[..., 3] < 0.99)
    assert outline.sum() > 20  # the blend is exercised
    np.testing.assert_allclose(np.asarray(under_grad), eager, atol=1e-4)


def _icosphere_loss(flat: bool = False):
    """A smooth loss of a shaded, antialiased icosphere (80 mm, vertex colours varying over the
    surface) under pose (angles, translation) and RGB SH light: the pipeline of ``render``."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=80.0)
    vertices = jnp.asarray(mesh.vertices, jnp.float32)
    triangles = jnp.asarray(mesh.faces, jnp.int32)
    adjacency = jnp.asarray(edge_adjacency(mesh.faces))
    normals = vertices / 80.0
    albedo = 0.5 + 0.3 * jnp.sin(vertices / 25.0 + jnp.array([0.0, 1.0, 2.0]))
    if flat:  # uniform colour: the antialiased image is then continuous in the pose
        albedo = jnp.full_like(albedo, 0.6)
    rows, cols = jnp.mgrid[0:SIZE, 0:SIZE] / SIZE
    weights = jnp.stack([cols, rows, jnp.sin(3 * cols + 2 * rows)], axis=-1)
    camera = deng_camera(SIZE)

    def loss(angles, translation, light):
        clip = perspective_clip(rigid_transform(vertices, angles, translation), camera)
        colour = shade(albedo, normals @ euler_to_rotation(angles).T, light * (not flat))
        raster = rasterize(clip, triangles, (SIZE, SIZE))
        image = interpolate(
            jnp.concatenate([colour, jnp.ones_like(colour[:, :1])], -1), raster, triangles
        )
        image = antialias(image, raster, clip, triangles, adjacency)
        return jnp.sum(weights * image[..., :3]) + jnp.sum(weights[..., 0] * image[..., 3])

    return jax.jit(loss)


@pytest.mark.parametrize("flat", [False, True])
def test_gradients_match_finite_differences(model, flat):
    """Pose, translation and light gradients of an image loss agree with central differences.

    With shading, the antialiased image still jumps by half a pixel's colour variation when a pixel
    centre crosses the outline (as nvdiffrast's), which finite differences of a translation pick up:
    translation is checked on the uniformly coloured (continuous) image, rotation and light on both.
    """
    loss = _icosphere_loss(flat)
    base = _coeffs(model)
    args = (base["angles"], base["translation"], base["light"])
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(*args)
    steps = (3e-3, 3e-3, 1e-2)
    rng = np.random.default_rng(0)
    for i, (grad, step) in enumerate(zip(grads, steps, strict=True)):
        if (i == 1) != flat:  # flat: translation only (a flat sphere barely changes when rotated)
            continue
        for _ in range(2):
            direction = rng.normal(size=args[i].shape).astype(np.float32)
            direction /= np.linalg.norm(direction)
            plus = list(args)
            minus = list(args)
            plus[i] = args[i] + step * direction
            minus[i] = args[i] - step * direction
            fd = float(loss(*plus) - loss(*minus)) / (2 * step)
            # Directional derivative within 5 % of the gradient's norm.
            assert abs(float(jnp.vdot(grad, direction)) - fd) <= 0.05 * float(jnp.linalg.norm(grad))


@pytest.mark.slow(reason="~25 s: compiles render + its gradient on the full face model")
def test_light_gradient_through_render(model):
    """render() is linear in the light: its gradient equals the difference quotient exactly."""
    weights = jax.random.uniform(jax.random.key(0), (SIZE, SIZE, 3))
    base = _coeffs(model)

    @jax.jit
    def loss(light):
        return jnp.sum(weights * render(model, dict(base, light=light), image_size=SIZE).image)

    grad = jax.jit(jax.grad(loss))(base["light"])
    direction = jnp.asarray(np.random.default_rng(1).normal(size=27), jnp.float32)
    fd = (
        float(loss(base["light"] + 0.05 * direction) - loss(base["light"] - 0.05 * direction)) / 0.1
    )
    assert float(jnp.vdot(grad, direction)) == pytest.approx(fd, rel=1e-3)


def test_fitting_recovers_pose(model):
    """Gradient descent on photometric + mask losses from a perturbed pose finds the target pose."""
    camera = deng_camera(SIZE)
    target_coeffs = _coeffs(model)
    target = render(model, target_coeffs, camera)

    def loss(pose):
        coeffs = dict(target_coeffs, angles=pose[:3], translation=pose[3:])
        out = render(model, coeffs, camera)
        return jnp.mean((out.image - target.image) ** 2) + jnp.mean((out.mask - target.mask) ** 2)

    truth = jnp.concatenate([target_coeffs["angles"], target_coeffs["translation"]])
    pose = truth + jnp.array([0.08, -0.1, 0.06, 0.08, 0.06, 0.0])
    optimizer = optax.adam(0.01)
    state = optimizer.init(pose)

    @jax.jit
    def step(pose, state):
        value, grad = jax.value_and_grad(loss)(pose)
        updates, state = optimizer.update(grad, state)
        return optax.apply_updates(pose, updates), state, value

    first = None
    for _ in range(120):
        pose, state, value = step(pose, state)
        first = value if first is None else first
    error = np.abs(np.asarray(pose - truth))
    assert float(loss(pose)) < 0.05 * float(first)
    assert error[:3].max() < 0.01  # radians
    assert error[3:5].max() < 0.01  # decimetres (1 mm)
