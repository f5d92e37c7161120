"""Tests of occface_jax/data/draw.py against exact areas (shoelace formula) and the pixel convention."""

from __future__ import annotations

import numpy as np

from occface_jax.data import draw


def shoelace(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def test_axis_aligned_square_covers_exactly_its_pixels():
    # A square from 2 to 6 (pixel edges) covers pixels 2..5 whose centres are 2.5..5.5.
    square = np.array([[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]])
    cov = draw.fill_polygons((10, 10), [square])
    assert (cov[2:6, 2:6] > 0.5).all()
    outside = np.ones((10, 10), bool)
    outside[1:7, 1:7] = False
    assert (cov[outside] == 0).all()


def test_coverage_sums_to_polygon_area():
    rng = np.random.default_rng(0)
    for _ in range(5):
        poly = draw.star_blob(rng, (40.0, 40.0), 18.0)
        cov = draw.fill_polygons((80, 80), [poly])
        assert abs(cov.sum() - shoelace(poly)) / shoelace(poly) < 0.01


def test_ellipse_area_and_rotation():
    poly = draw.ellipse((50, 50), (30, 10), angle=0.7, n=256)
    assert abs(shoelace(poly) - np.pi * 300) / (np.pi * 300) < 1e-3
    cov = draw.fill_polygons((100, 100), [poly])
    ys, xs = np.nonzero(cov > 0.5)
    # principal axis of the covered pixels is along the rotation angle (y down: clockwise on screen)
    evals, evecs = np.linalg.eigh(np.cov(np.stack([xs, ys])))
    major = evecs[:, np.argmax(evals)]
    assert abs(abs(np.dot(major, [np.cos(0.7), np.sin(0.7)])) - 1) < 1e-2


def test_bezier_endpoints_and_degree_one_is_a_line():
    ctrl = np.array([[0.0, 0.0], [3.0, 9.0], [10.0, 2.0]])
    curve = draw.bezier(ctrl, n=11)
    np.testing.assert_allclose(curve[[0, -1]], ctrl[[0, -1]])
    # quadratic Bezier closed form at t = 0.5: (p0 + 2 p1 + p2) / 4
    np.testing.assert_allclose(curve[5], (ctrl[0] + 2 * ctrl[1] + ctrl[2]) / 4)
    line = draw.bezier(np.array([[0.0, 0.0], [4.0, 2.0]]), n=5)
    np.testing.assert_allclose(line, np.stack([np.linspace(0, 4, 5), np.linspace(0, 2, 5)], 1))
