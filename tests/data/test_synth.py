"""Tests of occface_jax/data/synth.py on the default model at 64 px (one renderer compile per module)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from occface_jax.data.contour import canny_contour
from occface_jax.data.synth import SynthConfig, SyntheticFaces, landmark_visibility
from occface_jax.morphable import contour

SIZE = 64


@pytest.fixture(scope="module")
def source(default_model):
    return SyntheticFaces(default_model, SynthConfig(image_size=SIZE), seed=5, size=100)


@pytest.fixture(scope="module")
def samples(source):
    return {i: source[i] for i in (0, 1, 2, 3)}


def test_same_index_same_sample_across_instances_and_order(default_model, source, samples):
    fresh = SyntheticFaces(default_model, SynthConfig(image_size=SIZE), seed=5, size=100)
    again = fresh[2]  # read out of order, on another instance
    for key, value in samples[2].items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)
    assert not np.array_equal(samples[0]["clean"], samples[1]["clean"])
    other_seed = SyntheticFaces(default_model, SynthConfig(image_size=SIZE), seed=6, size=100)
    np.testing.assert_raises(
        AssertionError,
        np.testing.assert_array_equal,
        other_seed.coefficients(2)["id"],
        source.coefficients(2)["id"],
    )


def test_shapes_ranges_and_region_nesting(samples):
    for s in samples.values():
        assert s["occluded"].shape == s["clean"].shape == (SIZE, SIZE, 3)
        for key in ("occluded", "clean", "gray", "mask", "alpha", "face_region", "contour"):
            assert s[key].min() >= 0 and s[key].max() <= 1, key
        # the mask only marks occluder pixels over the face; the face lies on the rendered head
        assert np.all(s["mask"] <= s["face_region"])
        assert np.all(s["mask"] <= (s["alpha"] >= 0.5))
        assert np.all(s["face_region"] <= (s["depth"] > 0))
        assert s["face_region"].sum() > 0.1 * SIZE * SIZE
        untouched = s["alpha"] == 0
        np.testing.assert_array_equal(s["occluded"][untouched], s["clean"][untouched])


def test_landmarks_match_an_independent_projection_and_land_on_the_face(
    default_model, source, samples
):
    jaw = contour.for_model(default_model)
    for i, s in samples.items():
        c = source.coefficients(i)
        n = default_model.n_vertices
        offsets = (
            np.asarray(default_model.id_basis) @ c["id"]
            + np.asarray(default_model.exp_basis) @ c["exp"]
        )
        vertices = np.asarray(default_model.mean_shape) + offsets.reshape(n, 3)
        # Deng et al.'s camera: R = Rz(roll) Ry(yaw) Rx(pitch) (extrinsic x, y, z), mm -> dm, eye at z = 10
        world = Rotation.from_euler("xyz", c["angles"]).apply(vertices / 100.0) + c["translation"]
        focal = s["focal"]
        assert abs(focal / (1015.0 * SIZE / 224) - 1) <= 0.1 + 1e-6
        u = SIZE / 2 + focal * world[:, 0] / (10.0 - world[:, 2])
        v = SIZE / 2 - focal * world[:, 1] / (10.0 - world[:, 2])
        pixels = np.stack([u, v], 1)
        ids = np.asarray(default_model.landmarks68).copy()
        np.testing.assert_allclose(s["landmarks"][17:], pixels[ids[17:]], atol=2e-3)
        # The jaw (0-16) is on the outline: each point is one vertex of its candidate line, the
        # one furthest out along the line's outward direction turned by the pose.
        lines = jaw.candidates
        gap = np.linalg.norm(pixels[lines] - s["landmarks"][:17, None], axis=-1)  # (17, K)
        assert gap.min(axis=1).max() < 2e-3
        ids[:17] = lines[np.arange(17), gap.argmin(axis=1)]
        turned = Rotation.from_euler("xyz", c["angles"]).apply(jaw.outward)
        reach = np.einsum("lkc,lc->lk", pixels[lines], turned[:, :2] * [1.0, -1.0])
        chosen = np.take_along_axis(reach, gap.argmin(axis=1)[:, None], axis=1)[:, 0]
        assert np.all(chosen >= reach.max(axis=1) - 1e-3)
        world = world[ids]
        vis = s["landmarks_visible"]
        assert vis.sum() >= 40  # mostly frontal poses: most landmarks are visible
        col, row = np.floor(s["landmarks"][vis]).astype(int).T
        # the surface seen at a visible landmark's pixel is the landmark's own (view depth in mm)
        depth_mm = (10.0 - world[vis, 2]) * 100.0
        assert (np.abs(s["depth"][row, col] - depth_mm) < 15.0).mean() >= 0.9
        # visible brow, nose and outer-lip landmarks sit in the face region (eye and inner-mouth
        # landmarks border the eye and mouth holes of the region)
        ids = np.r_[17:36, 48:60]
        inner = ids[vis[ids]]
        col, row = np.floor(s["landmarks"][inner]).astype(int).T
        assert (s["face_region"][row, col] > 0).mean() > 0.9
        assert not (s["landmarks_unoccluded"] & ~vis).any()


def test_cameras_vary(samples):
    assert len({float(s["focal"]) for s in samples.values()}) == len(samples)


def test_landmark_visibility_depth_test():
    depth = np.full((10, 10), 100.0)
    cover = np.ones((10, 10))
    lm = np.array([[2.5, 2.5], [5.5, 5.5], [20.0, 3.0]])
    vis = landmark_visibility(lm, np.array([101.0, 130.0, 100.0]), depth, cover, 5.0)
    assert vis.tolist() == [True, False, False]  # in front / behind the surface / outside the image


def test_contour_is_canny_of_the_clean_image(samples):
    s = samples[0]
    np.testing.assert_array_equal(s["contour"], canny_contour(s["clean"]))
    assert s["contour"].sum() > 0


def test_coefficients_follow_the_config(default_model, source):
    coeffs = [source.coefficients(i) for i in range(30)]
    exp = np.stack([c["exp"] for c in coeffs])
    assert exp.min() >= 0 and exp.max() <= 0.8
    assert ((exp > 0).sum(1) <= 8).all()
    angles = np.rad2deg(np.stack([c["angles"] for c in coeffs]))
    assert (np.abs(angles) <= [15, 35, 10]).all()
    assert source[0]["coeffs"].shape == (source.layout.size,)
