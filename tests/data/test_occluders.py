"""Tests of occface_jax/data/occluders.py: layers, exact masks, compositing, coverage control."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.data import occluders as oc
from occface_jax.data.augment import face_region_from_landmarks

SIZE = 96


@pytest.fixture(scope="module")
def face(make_face_photo):
    img, lm = make_face_photo(SIZE)
    region = face_region_from_landmarks(lm, (SIZE, SIZE))
    return img.astype(np.float32) / 255.0, lm, region, oc.FaceFrame.from_landmarks(lm)


@pytest.mark.parametrize("kind", sorted(oc.OCCLUDERS))
def test_layer_is_valid_deterministic_and_touches_the_face(kind, face):
    _, _, region, frame = face
    layer = oc.OCCLUDERS[kind](np.random.default_rng(7), frame, (SIZE, SIZE), 1.0)
    again = oc.OCCLUDERS[kind](np.random.default_rng(7), frame, (SIZE, SIZE), 1.0)
    other = oc.OCCLUDERS[kind](np.random.default_rng(8), frame, (SIZE, SIZE), 1.0)
    assert layer.rgb.shape == (SIZE, SIZE, 3) and layer.alpha.shape == (SIZE, SIZE)
    assert layer.rgb.min() >= 0 and layer.rgb.max() <= 1
    assert layer.alpha.min() >= 0 and layer.alpha.max() <= 1
    np.testing.assert_array_equal(layer.alpha, again.alpha)
    np.testing.assert_array_equal(layer.rgb, again.rgb)
    assert not np.array_equal(layer.alpha, other.alpha)
    # placed on the face: some opaque pixels inside the face region (over a few seeds: cut-outs
    # are placed anywhere on the face and may be small)
    hits = [
        (
            (oc.OCCLUDERS[kind](np.random.default_rng(s), frame, (SIZE, SIZE), 1.0).alpha > 0.5)
            & (region > 0)
        ).sum()
        for s in range(3)
    ]
    assert max(hits) > 0


def test_sunglasses_lenses_count_as_occlusion_clear_lenses_do_not(face):
    _, lm, region, frame = face
    eye_centres = np.round(np.stack([lm[36:42].mean(0), lm[42:48].mean(0)]) - 0.5).astype(int)
    for sunglasses, expected in ((True, 1.0), (False, 0.0)):
        layer = oc.glasses(np.random.default_rng(3), frame, (SIZE, SIZE), 1.0, sunglasses)
        mask = oc.occlusion_mask(layer.alpha, region)
        assert all(mask[y, x] == expected for x, y in eye_centres)


def test_composite_matches_porter_duff_over(face):
    image, _, _, frame = face
    a = oc.hand(np.random.default_rng(1), frame, (SIZE, SIZE), 1.0)
    b = oc.glasses(np.random.default_rng(2), frame, (SIZE, SIZE), 1.0, True)
    out, alpha = oc.composite(image, [a, b])
    # Porter & Duff (1984) "A over B" with premultiplied colours, evaluated as b over (a over image).
    pa, pb = a.rgb * a.alpha[..., None], b.rgb * b.alpha[..., None]
    under = pa + (1 - a.alpha[..., None]) * image
    expected = pb + (1 - b.alpha[..., None]) * under
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(alpha, 1 - (1 - a.alpha) * (1 - b.alpha), atol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_mask_is_exactly_the_opaque_occluder_over_the_face(seed, face):
    image, _, region, frame = face
    result = oc.occlude(image, region, frame, np.random.default_rng(seed))
    mask = result.mask.astype(bool)
    assert np.array_equal(mask, (result.alpha >= oc.MASK_ALPHA_THRESHOLD) & (region > 0))
    # Pixels no occluder touches are untouched; the mask only marks pixels that changed or are opaque.
    untouched = result.alpha == 0
    np.testing.assert_array_equal(result.occluded[untouched], image[untouched])
    assert not mask[untouched].any()
    assert result.coverage == pytest.approx(mask.sum() / region.sum())


def test_coverage_control_hits_the_requested_range(face):
    image, _, region, frame = face
    config = oc.OcclusionConfig(
        kinds=("hand", "medical_mask", "cup", "sunglasses"), coverage=(0.2, 0.35)
    )
    coverages = [
        oc.occlude(image, region, frame, np.random.default_rng(s), config).coverage
        for s in range(16)
    ]
    inside = np.mean([0.2 <= c <= 0.35 for c in coverages])
    assert inside >= 0.75, coverages
    low = oc.OcclusionConfig(kinds=config.kinds, coverage=(0.03, 0.1))
    low_cov = [
        oc.occlude(image, region, frame, np.random.default_rng(s), low).coverage for s in range(8)
    ]
    assert np.median(low_cov) < np.median(coverages)


def test_face_frame_round_trip_and_landmark_axes(face):
    _, lm, _, frame = face
    points = np.random.default_rng(0).uniform(0, SIZE, (20, 2))
    np.testing.assert_allclose(frame.to_local(frame.to_pixels(points)), points, atol=1e-9)
    eyes = frame.to_local(np.stack([lm[36:42].mean(0), lm[42:48].mean(0)]))
    np.testing.assert_allclose(eyes, [[-0.5, 0.0], [0.5, 0.0]], atol=1e-9)
    assert frame.point("chin")[1] > frame.point("mouth")[1] > frame.point("nose")[1] > 0


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown occluder"):
        oc.OcclusionConfig(kinds=("glasses", "umbrella"))
