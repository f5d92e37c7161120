"""Error heat maps: the colour scale's ends and grey for unknown errors, a plane of one error drawn
in exactly that colour (head-on light: Lambert 1), the two halves of a split plane in the colours
of their errors, and the pictures a protocol writes."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.eval import heatmap

SQUARE = np.array([[-50, -50, 0], [50, -50, 0], [50, 50, 0], [-50, 50, 0]], np.float32)
FACING = np.array([[0, 1, 2], [0, 2, 3]])  # counter-clockwise seen from +z: normal to the camera


def test_colours_run_blue_to_red_and_unknown_is_grey():
    colours = heatmap.error_colours(np.array([0.0, 5.0, 50.0, np.nan, -1.0]), max_mm=5.0)
    blue, red = colours[0], colours[1]
    assert blue[2] > 0.45 and blue[0] == blue[1] == 0.0  # JET's dark blue
    assert red[0] > 0.45 and red[1] == red[2] == 0.0  # JET's dark red
    np.testing.assert_array_equal(colours[2], red)  # above the scale: its top
    np.testing.assert_array_equal(colours[4], blue)  # below 0: its bottom
    np.testing.assert_array_equal(colours[3], [heatmap.NO_ERROR_GREY] * 3)
    with pytest.raises(ValueError, match="max_mm"):
        heatmap.error_colours(np.zeros(2), max_mm=0.0)


def test_default_scale_is_the_95th_percentile_rounded_up_to_half_millimetres():
    errors = np.concatenate([np.linspace(0.0, 3.2, 100), [np.nan, 40.0]])
    # 101 finite values: the 95th percentile is the 96th smallest, 3.2 * 95 / 99 = 3.07 -> 3.5
    assert heatmap.default_max_mm(errors) == 3.5
    assert heatmap.default_max_mm(np.full(3, np.nan)) == 1.0
    assert heatmap.default_max_mm(np.zeros(3)) == 0.5


def test_a_plane_of_one_error_is_drawn_in_its_colour():
    size = 64
    picture = heatmap.error_heatmap(SQUARE, FACING, np.full(4, 2.5), max_mm=5.0, size=size)
    assert picture.shape == (size, 2 * size + heatmap.BAR_WIDTH, 3)
    expected = heatmap.error_colours(np.array([2.5]), 5.0)[0]
    np.testing.assert_allclose(picture[size // 2, size // 2], expected, atol=2e-3)
    np.testing.assert_allclose(picture[2, size // 2], [1.0, 1.0, 1.0])  # background


def test_each_half_of_a_split_plane_takes_its_errors_colour():
    # two squares side by side, the left one's vertices at 0 mm, the right one's at 5 mm; a
    # vertex no triangle uses (index 8) may have any error and is not drawn
    left = SQUARE * [0.5, 1, 1] - [25, 0, 0]
    right = SQUARE * [0.5, 1, 1] + [25, 0, 0]
    vertices = np.concatenate([left, right, [[0, 0, 500]]])
    triangles = np.concatenate([FACING, FACING + 4])
    errors = np.array([0.0] * 4 + [5.0] * 4 + [np.nan])
    picture = heatmap.error_heatmap(vertices, triangles, errors, max_mm=5.0, size=64)
    front = picture[:, :64]
    colours = heatmap.error_colours(np.array([0.0, 5.0]), 5.0)
    columns = [front[32, x] for x in (12, 52)]
    # which side x + lands on is the camera's business: one half blue, the other red
    got = sorted(columns, key=lambda c: c[2])
    np.testing.assert_allclose(got[0], colours[1], atol=2e-3)
    np.testing.assert_allclose(got[1], colours[0], atol=2e-3)
    with pytest.raises(ValueError, match="does not match"):
        heatmap.error_heatmap(vertices, triangles, errors[:4])


def test_on_vertices_puts_errors_at_their_indices():
    out = heatmap.on_vertices(5, np.array([1, 3]), np.array([0.5, 2.0]))
    np.testing.assert_array_equal(np.isnan(out), [True, False, True, False, True])
    assert out[1] == 0.5 and out[3] == 2.0
