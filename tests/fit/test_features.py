"""Feature masks from the 68 landmarks, and the ring rule for enclosed features."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from occface_jax.fit.features import (
    eye_brow_regions,
    feature_mask,
    feature_masks,
    occlude_enclosed_features,
)


def test_feature_mask_covers_eyes_brows_and_inner_mouth_only():
    lms = np.zeros((68, 2), np.float32)
    eye = np.array([[20, 30], [24, 27], [28, 27], [32, 30], [28, 33], [24, 33]], np.float32)
    lms[36:42] = eye
    lms[42:48] = eye + [30, 0]
    lms[17:22] = np.stack([np.linspace(18, 34, 5), np.full(5, 20.0)], 1)
    lms[22:27] = lms[17:22] + [30, 0]
    lms[48:60] = [40, 60]  # outer lips collapsed to a point: only the inner mouth polygon counts
    lms[60:68] = np.array(
        [[32, 60], [36, 57], [44, 57], [48, 60], [44, 63], [40, 64], [36, 63], [34, 62]], np.float32
    )
    mask = np.asarray(feature_mask(jnp.asarray(lms), 80, margin=2.0))
    parts = np.asarray(feature_masks(jnp.asarray(lms), 80, margin=2.0))
    assert parts.shape == (4, 80, 80)
    np.testing.assert_array_equal(parts.max(0), mask)
    assert mask[30, 26] == 1 and mask[30, 56] == 1  # eye centres (row y, column x)
    assert mask[20, 25] == 1  # on a brow
    assert mask[60, 40] == 1  # inside the inner mouth
    assert (
        mask[70, 40] == 0 and mask[25, 45] == 0 and mask[45, 10] == 0
    )  # chin, between brows, cheek


def test_ring_rule_judges_each_feature_on_its_own_band():
    """A feature whose skin band is mostly occluded is marked whole; one whose band is clear, or
    too small to judge (fewer than 4 x ring skin pixels), is not; ring 0 changes nothing."""
    features = np.zeros((3, 40, 40), np.float32)
    features[0, 10:14, 10:16] = 1  # band fully occluded below
    features[1, 25:29, 25:31] = 1  # band clear
    features[2, 0:2, 36:40] = 1  # at the corner, its band outside the skin
    skin = np.ones((40, 40), bool)
    skin[:4, 30:] = False
    occlusion = np.zeros((40, 40), np.float32)
    occlusion[5:20, 5:22] = 1
    occlusion[10:14, 10:16] = 0  # the residual never flags the feature itself
    occlusion[0:4, 34:40] = 1
    got = np.asarray(occlude_enclosed_features(jnp.asarray(occlusion), features, skin, 3, 0.5))
    assert got[10:14, 10:16].min() == 1.0
    assert got[25:29, 25:31].max() == 0.0
    np.testing.assert_array_equal(got[0:2, 36:40], occlusion[0:2, 36:40])
    np.testing.assert_array_equal(
        np.asarray(occlude_enclosed_features(jnp.asarray(occlusion), features, skin, 0)), occlusion
    )


def test_eye_brow_regions_split_the_brows_between_the_eyes():
    features = np.zeros((4, 32, 32), np.float32)
    features[0, 14:18, 4:10] = features[1, 14:18, 20:26] = 1
    features[3, 8:10, 4:28] = 1  # one brow map, both sides (even across the middle)
    regions = np.asarray(eye_brow_regions(jnp.asarray(features)))
    assert regions.shape == (4, 32, 32)
    np.testing.assert_array_equal(regions[:2], features[:2])
    assert regions[2, 8:10, 4:15].all() and not regions[2, :, 15:].any()
    assert regions[3, 8:10, 15:28].all() and not regions[3, :, :15].any()
