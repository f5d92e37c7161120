"""``faces.edges``: Canny, hole growing and resizing in JAX against the host versions the pipeline
used (scikit-image's Canny via ``data.contour.canny_contour``, OpenCV's dilation and resize), on
real aligned face crops and synthetic shapes; hysteresis against connected-component labelling."""

from __future__ import annotations

import cv2
import jax
import numpy as np
import pytest
from scipy import ndimage

from occface_jax.data import contour as host_contour
from occface_jax.data.inpainting import FaceCrops, dilate, dilation_radius
from occface_jax.faces import edges


def f_score(ours: np.ndarray, ref: np.ndarray) -> float:
    tp = np.sum(ours & ref)
    return float(2 * tp / max(2 * tp + np.sum(ours & ~ref) + np.sum(~ours & ref), 1))


@pytest.fixture(scope="module")
def face_crops(shared_dir) -> np.ndarray:
    """The first 8 annotated faces of dlib's examples, Deng-aligned, at N_cont's 128 px."""
    crops = FaceCrops(shared_dir / "faces" / "dlib", image_size=128)
    return np.stack([crops[i]["image"] for i in range(min(8, len(crops)))])


def shapes(size: int = 96, seed: int = 0) -> np.ndarray:
    """Gray test scenes (4, size, size): a disc, a rotated square, thin lines, a ramp with a step;
    plus a little noise."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    c = size / 2
    disc = ((xx - c) ** 2 + (yy - c) ** 2 < (0.3 * size) ** 2) * 0.7 + 0.1
    u, v = (xx - c + yy - c) / np.sqrt(2), (xx - c - yy + c) / np.sqrt(2)
    square = ((np.abs(u) < 0.25 * size) & (np.abs(v) < 0.2 * size)) * 0.5 + 0.3
    lines = 0.2 + 0.6 * ((np.abs(yy - 0.3 * size) < 1) | (np.abs(xx - yy * 0.5 - 20) < 1.5))
    ramp = xx / size * 0.5 + (yy > 0.6 * size) * 0.3
    scenes = np.stack([disc, square, lines, ramp]).astype(np.float32)
    noise = np.random.default_rng(seed).normal(0, 0.01, scenes.shape).astype(np.float32)
    return np.clip(scenes + noise, 0, 1)


def test_the_constants_are_the_training_datas():
    assert edges.CANNY_SIGMA == host_contour.CANNY_SIGMA
    np.testing.assert_allclose(edges.LUMA_WEIGHTS, host_contour.LUMA_WEIGHTS)


def test_canny_agrees_with_scikit_image_on_real_face_crops(face_crops):
    ours = np.asarray(jax.jit(edges.canny_rgb)(face_crops)) > 0.5
    for crop, mine in zip(face_crops, ours, strict=True):
        ref = host_contour.canny_contour(crop) > 0.5
        assert ref.sum() > 300
        # Measured: identical on every crop (float32 vs float64 could flip a tie).
        assert f_score(mine, ref) >= 0.995
        assert np.mean(mine == ref) >= 0.999
    gray = host_contour.to_gray(face_crops)
    np.testing.assert_allclose(np.asarray(edges.luma(face_crops)), gray, atol=1e-6)


def test_canny_agrees_with_scikit_image_on_synthetic_shapes():
    scenes = shapes()
    ours = np.asarray(edges.canny(scenes)) > 0.5
    for scene, mine in zip(scenes, ours, strict=True):
        ref = host_contour.canny_contour(scene) > 0.5
        assert ref.sum() > 50
        assert f_score(mine, ref) >= 0.995
    # A flat image has no edges; the disc's edge lies on its circle.
    assert not np.asarray(edges.canny(np.full((32, 32), 0.4, np.float32))).any()
    yy, xx = np.mgrid[0:96, 0:96] + 0.5
    r = np.hypot(xx[ours[0]] - 48, yy[ours[0]] - 48)
    assert np.abs(r - 0.3 * 96).max() < 1.5


def test_canny_is_close_to_opencv_on_real_face_crops(face_crops):
    """OpenCV's Canny with the same blur, L2 magnitude and thresholds on fixed-point gradients
    (x 1000): its directions are quantised, not interpolated, and its border differs, so it
    agrees less pixel for pixel, and nearly everywhere within one pixel."""
    ours = np.asarray(edges.canny_rgb(face_crops)) > 0.5
    exact, near = [], []
    for crop, mine in zip(face_crops, ours, strict=True):
        gray = host_contour.to_gray(crop).astype(np.float64)
        blurred = cv2.GaussianBlur(gray, (15, 15), edges.CANNY_SIGMA, borderType=cv2.BORDER_REFLECT)
        dx, dy = (
            np.round(cv2.Sobel(blurred * 1000, cv2.CV_64F, *order, ksize=3)).astype(np.int16)
            for order in ((1, 0), (0, 1))
        )
        ref = cv2.Canny(dx, dy, 100, 200, L2gradient=True) > 0
        exact.append(f_score(mine, ref))
        grown_ref, grown_mine = (
            ndimage.binary_dilation(m, np.ones((3, 3), bool)) for m in (ref, mine)
        )
        precision, recall = np.mean(grown_ref[mine]), np.mean(grown_mine[ref])
        near.append(2 * precision * recall / (precision + recall))
    # Measured on all 43 dlib-example crops at 128 px: F 0.84-0.93 (mean 0.89); within one
    # pixel 0.93-0.99 (mean 0.98).
    assert min(exact) >= 0.8 and np.mean(exact) >= 0.85, exact
    assert min(near) >= 0.9 and np.mean(near) >= 0.95, near


def test_canny_under_jit_and_vmap_equals_the_batched_call():
    scenes = shapes(64, seed=3)
    batched = np.asarray(jax.jit(edges.canny)(scenes))
    mapped = np.asarray(jax.jit(jax.vmap(edges.canny))(scenes))
    one = jax.jit(edges.canny)
    single = np.stack([np.asarray(one(s)) for s in scenes])
    np.testing.assert_array_equal(batched, single)
    np.testing.assert_array_equal(mapped, single)
    assert batched.dtype == np.float32 and set(np.unique(batched)) <= {0.0, 1.0}
    nested = np.asarray(edges.canny(scenes.reshape(2, 2, 64, 64)))  # any leading axes
    np.testing.assert_array_equal(nested.reshape(4, 64, 64), single)


def test_hysteresis_keeps_the_components_touching_a_strong_pixel():
    rng = np.random.default_rng(0)
    candidates = rng.uniform(size=(3, 40, 40)) < 0.45
    strong = candidates & (rng.uniform(size=candidates.shape) < 0.02)
    got = np.asarray(edges.hysteresis(strong, candidates))
    for cand, st, mine in zip(candidates, strong, got, strict=True):
        labels, _ = ndimage.label(cand, np.ones((3, 3), bool))
        keep = np.isin(labels, np.unique(labels[st])) & (labels > 0)
        np.testing.assert_array_equal(mine, keep)
    # A long snake needs many steps: the bound stops it partway, the default reaches its end.
    snake = np.zeros((21, 21), bool)
    snake[::4, :] = True
    snake[1::8, -1] = snake[2::8, -1] = snake[3::8, -1] = True
    snake[5::8, 0] = snake[6::8, 0] = snake[7::8, 0] = True
    start = np.zeros_like(snake)
    start[0, 0] = True
    np.testing.assert_array_equal(np.asarray(edges.hysteresis(start, snake)), snake)
    assert np.asarray(edges.hysteresis(start, snake, max_iterations=8)).sum() < snake.sum()


def test_dilate_disk_equals_the_host_dilation_exactly():
    rng = np.random.default_rng(1)
    masks = (rng.uniform(size=(4, 50, 50)) > 0.985).astype(np.float32)
    masks[0, 0, 0] = masks[1, -1, 25] = 0.9  # at the border: nothing grows beyond it
    masks[2, 20:30, 10:40] = 0.6
    for radius in (0, 1, 2, 3, 5):
        got = np.asarray(jax.jit(edges.dilate_disk, static_argnums=1)(masks, radius))
        want = np.stack([dilate(m, radius) for m in masks])
        np.testing.assert_array_equal(got, want)
    for dilation, side in ((0.015, 224), (0.015, 128), (0.0, 64), (0.001, 64)):
        assert edges.dilation_radius(dilation, side) == dilation_radius(dilation, (side, side))


@pytest.mark.parametrize("n_in,n_out", [(224, 128), (224, 64), (64, 32), (128, 224), (64, 224)])
def test_resize_square_matches_opencv(n_in, n_out):
    rng = np.random.default_rng(n_in + n_out)
    image = rng.uniform(size=(n_in, n_in, 3)).astype(np.float32)
    kind = cv2.INTER_AREA if n_out < n_in else cv2.INTER_LINEAR
    want = cv2.resize(image, (n_out, n_out), interpolation=kind)
    got = np.asarray(edges.resize_square(image[None], n_out, channels=True))[0]
    np.testing.assert_allclose(got, want, atol=2e-5)
    gray = image[..., 0]
    want = cv2.resize(gray, (n_out, n_out), interpolation=kind)
    np.testing.assert_allclose(np.asarray(edges.resize_square(gray, n_out)), want, atol=2e-5)
    hole = (rng.uniform(size=(n_in, n_in)) > 0.995).astype(np.float32)
    want = (cv2.resize(hole, (n_out, n_out), interpolation=kind) > 0).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(edges.resize_hole(hole, n_out)), want)
