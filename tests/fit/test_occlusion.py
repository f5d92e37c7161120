"""The occlusion estimate without a network: residual outliers, proposals confirmed, the colour
test, and the ring rule inside the estimate."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from occface_jax.fit.features import eye_brow_regions
from occface_jax.fit.occlusion import estimate_occlusion, occluder_colour_share


def test_estimate_occlusion_flags_outliers_thin_lines_but_not_features():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.4, 0.6, (64, 64, 3)).astype(np.float32)
    rendered = image + rng.normal(0, 0.03, image.shape).astype(np.float32)  # a good fit
    rendered[10:20, 10:30] += 0.5  # a block occluder
    rendered[40, 5:60] += 0.5  # a one-pixel line (a hair strand)
    rendered[50:56, 40:50] += 0.5  # something wrong inside a protected region (an eye)
    face = np.ones((64, 64), np.float32)
    protect = np.zeros((64, 64), np.float32)
    protect[48:58, 38:52] = 1
    occ = np.asarray(
        estimate_occlusion(
            jnp.asarray(image),
            jnp.asarray(rendered),
            jnp.asarray(face),
            2.5,
            0.15,
            jnp.asarray(protect),
        )
    )
    assert occ[10:20, 10:30].mean() == 1.0
    assert occ[40, 10:55].mean() == 1.0
    assert occ[50:56, 40:50].sum() == 0
    assert occ[25:38, :].mean() < 0.01


def test_estimate_occlusion_confirms_proposed_pixels_on_a_lower_residual():
    """Proposed pixels (a mask network's) stay occluded where their residual is above
    ``confirm_ratio`` x median, even in a protected region, and are freed where the fit explains
    them; unproposed pixels still need the full threshold."""
    rng = np.random.default_rng(1)
    image = rng.uniform(0.4, 0.6, (64, 64, 3)).astype(np.float32)
    rendered = image + rng.normal(0, 0.02, image.shape).astype(np.float32)  # median about 0.03
    rendered[5:15, 5:25] += 0.07  # a faint occluder (residual ~0.12): above 2 x median, below 0.15
    rendered[50:56, 40:50] += 0.5  # sunglasses over a protected eye
    proposed = np.zeros((64, 64), np.float32)
    proposed[5:15, 5:25] = 1
    proposed[50:56, 40:50] = 1
    proposed[25:35, 20:40] = 1  # a false proposal on well-explained skin
    protect = np.zeros((64, 64), np.float32)
    protect[48:58, 38:52] = 1
    args = [jnp.asarray(a) for a in (image, rendered, np.ones((64, 64), np.float32))]
    occ = np.asarray(
        estimate_occlusion(
            *args, 2.5, 0.15, jnp.asarray(protect), 1, jnp.asarray(proposed), confirm_ratio=2.0
        )
    )
    assert occ[5:15, 5:25].mean() == 1.0
    assert occ[50:56, 40:50].mean() == 1.0
    assert occ[25:35, 20:40].mean() < 0.1
    plain = np.asarray(estimate_occlusion(*args, 2.5, 0.15, jnp.asarray(protect), 1))
    assert plain[5:15, 5:25].mean() < 0.2 and plain[50:56, 40:50].sum() == 0


def test_occluder_colour_share_against_numpy_histograms():
    """h_o / (h_o + h_s) of 12^3-cell colour histograms, each smoothed over the 3^3 neighbouring
    cells (zero beyond the cube) and normalised: checked against np.histogramdd + scipy."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    image = rng.uniform(0, 1, (40, 40, 3)).astype(np.float32)
    image[:20] = 0.5 * image[:20] + np.float32(0.25)  # the two sets overlap in colour in part
    occluder = np.zeros((40, 40), bool)
    occluder[:15, :30] = True
    skin = np.zeros((40, 40), bool)
    skin[18:, 5:] = True
    got = np.asarray(occluder_colour_share(jnp.asarray(image), occluder, skin, bins=12))

    def density(where):
        h = np.histogramdd(image[where], bins=12, range=[(0, 1)] * 3)[0]
        h = ndimage.uniform_filter(h, size=3, mode="constant") * 27
        return h / h.sum()

    h_o, h_s = density(occluder), density(skin)
    with np.errstate(invalid="ignore"):
        share = np.nan_to_num(h_o / (h_o + h_s))
    cells = np.clip((image * 12).astype(int), 0, 11)
    want = share[cells[..., 0], cells[..., 1], cells[..., 2]]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert (want < 0.1).mean() > 0.05 and (want > 0.6).mean() > 0.05  # not all one value


def test_the_occluders_colour_flags_its_pixels_the_residual_test_missed():
    """Part of an occluder that the albedo has half absorbed (residual ~0.12: above 2 x median,
    under the 0.15 floor) is flagged when its colour is the flagged part's, not when it is the
    skin's; without the colour test neither is."""
    rng = np.random.default_rng(4)
    skin, orange = np.array([0.8, 0.6, 0.5]), np.array([0.9, 0.5, 0.1])
    image = np.tile(skin, (64, 64, 1)) + rng.normal(0, 0.01, (64, 64, 3))
    image[5:25, 5:30] = orange  # the occluder ...
    rendered = image + rng.normal(0, 0.03, image.shape)  # median residual about 0.05
    rendered[5:15, 5:30] = skin  # ... its upper half unexplained (residual ~0.45),
    rendered[15:25, 5:30] = orange + 0.07  # its lower half half absorbed by the albedo
    rendered[40:50, 30:55] = image[40:50, 30:55] + 0.07  # skin as poorly explained
    args = [jnp.asarray(a, jnp.float32) for a in (image, rendered, np.ones((64, 64)))]
    occ = np.asarray(estimate_occlusion(*args, 2.5, 0.15, close=1, colour_share=0.8))
    assert occ[5:15, 5:30].mean() == 1.0
    assert occ[15:25, 5:30].mean() > 0.95
    assert occ[40:50, 30:55].mean() < 0.05
    plain = np.asarray(estimate_occlusion(*args, 2.5, 0.15, close=1))
    assert plain[5:15, 5:30].mean() == 1.0 and plain[15:25, 5:30].mean() < 0.05


def test_a_feature_inside_an_occluder_is_occluded_one_beside_it_is_not():
    """The residual never flags a protected feature, but an ``enclosed`` one whose surrounding skin
    is mostly occluded (food over the lips) is marked whole; one with an occluder on one side only
    (a hand beside it) is left alone, and so is a protected feature that is not ``enclosed``."""
    rng = np.random.default_rng(2)
    image = rng.uniform(0.4, 0.6, (64, 64, 3)).astype(np.float32)
    rendered = image + rng.normal(0, 0.03, image.shape).astype(np.float32)
    mouth = np.zeros((64, 64), np.float32)
    mouth[44:50, 24:40] = 1
    eye = np.zeros((64, 64), np.float32)
    eye[12:18, 8:20] = 1
    rendered[38:56, 18:46] += 0.5  # an occluder over the mouth and all around it
    rendered[10:20, 22:32] += 0.5  # an occluder beside the eye (its right side only)
    args = [jnp.asarray(a) for a in (image, rendered, np.ones((64, 64), np.float32))]
    protect = jnp.asarray(eye + mouth)
    occ = np.asarray(
        estimate_occlusion(*args, 2.5, 0.15, protect, enclosed=jnp.asarray([eye, mouth]))
    )
    assert occ[44:50, 24:40].mean() == 1.0
    assert occ[12:18, 8:20].sum() == 0
    assert occ[10:20, 22:32].mean() == 1.0
    only_eye = np.asarray(estimate_occlusion(*args, 2.5, 0.15, protect, enclosed=eye[None]))
    assert only_eye[44:50, 24:40].sum() == 0  # the mouth is protected, not enclosed


def _eyes_case(lenses: tuple[bool, bool], frames: bool = False):
    """A 64 x 64 face with protected eyes (rows 20-27, columns 10-23 and 40-53), brows above them
    and a mouth; sunglasses lenses (residual +0.5 over the eye and 6 px around it) on the chosen
    eyes; with ``frames`` a 1-px spectacle rim 6 px outside each eye's protected region."""
    rng = np.random.default_rng(3)
    image = rng.uniform(0.4, 0.6, (64, 64, 3)).astype(np.float32)
    rendered = image + rng.normal(0, 0.03, image.shape).astype(np.float32)
    features = np.zeros((4, 64, 64), np.float32)
    features[0, 20:28, 10:24] = 1
    features[1, 20:28, 40:54] = 1
    features[2, 46:52, 24:40] = 1
    features[3, 14:18, 10:24] = features[3, 14:18, 40:54] = 1
    for covered, (c0, c1) in zip(lenses, ((10, 24), (40, 54)), strict=True):
        if covered:  # the lens covers the eye, its brow's lower half and the skin around the eye
            rendered[16:34, c0 - 6 : c1 + 6] += 0.5
        if frames:
            rendered[13:35, c0 - 7] += 0.5
            rendered[13:35, c1 + 6] += 0.5
            rendered[34, c0 - 7 : c1 + 7] += 0.5
    args = [jnp.asarray(a) for a in (image, rendered, np.ones((64, 64), np.float32))]
    features = jnp.asarray(features)
    return args, jnp.max(features, 0), eye_brow_regions(features)


def test_sunglasses_over_both_eyes_make_the_protected_eyes_yield():
    args, protect, regions = _eyes_case((True, True))
    occ = np.asarray(estimate_occlusion(*args, 2.5, 0.15, protect, yielding=regions))
    assert occ[20:28, 10:24].mean() == 1.0 and occ[20:28, 40:54].mean() == 1.0
    assert occ[46:52, 24:40].sum() == 0  # the mouth stays protected
    kept = np.asarray(estimate_occlusion(*args, 2.5, 0.15, protect))  # without the yielding
    assert kept[20:28, 10:24].sum() == 0 and kept[20:28, 40:54].sum() == 0


def test_visible_eyes_inside_spectacle_frames_stay_protected():
    args, protect, regions = _eyes_case((False, False), frames=True)
    occ = np.asarray(estimate_occlusion(*args, 2.5, 0.15, protect, yielding=regions))
    assert occ[20:28, 10:24].sum() == 0 and occ[20:28, 40:54].sum() == 0
    assert occ[14:18, 10:24].sum() == 0 and occ[14:18, 40:54].sum() == 0  # the brows too
    assert occ[13:35, 3].mean() == 1.0  # the rim itself is occluded


def test_one_covered_eye_yields_alone():
    args, protect, regions = _eyes_case((False, True))
    occ = np.asarray(estimate_occlusion(*args, 2.5, 0.15, protect, yielding=regions))
    assert occ[20:28, 40:54].mean() == 1.0
    assert occ[20:28, 10:24].sum() == 0 and occ[14:18, 10:24].sum() == 0
