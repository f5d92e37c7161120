"""Per-image fitting: occlusion estimation, landmark stage, and a whole fit with a given occluder."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.config import load_config
from occface_jax.fit.fitter import fitter as fit
from occface_jax.morphable import CoeffLayout, contour
from occface_jax.morphable.rendering import render
from occface_jax.render import deng_camera


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
        fit.estimate_occlusion(
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
        fit.estimate_occlusion(*args, 2.5, 0.15, protect, enclosed=jnp.asarray([eye, mouth]))
    )
    assert occ[44:50, 24:40].mean() == 1.0
    assert occ[12:18, 8:20].sum() == 0
    assert occ[10:20, 22:32].mean() == 1.0
    only_eye = np.asarray(fit.estimate_occlusion(*args, 2.5, 0.15, protect, enclosed=eye[None]))
    assert only_eye[44:50, 24:40].sum() == 0  # the mouth is protected, not enclosed


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
        fit.estimate_occlusion(
            *args, 2.5, 0.15, jnp.asarray(protect), 1, jnp.asarray(proposed), confirm_ratio=2.0
        )
    )
    assert occ[5:15, 5:25].mean() == 1.0
    assert occ[50:56, 40:50].mean() == 1.0
    assert occ[25:35, 20:40].mean() < 0.1
    plain = np.asarray(fit.estimate_occlusion(*args, 2.5, 0.15, jnp.asarray(protect), 1))
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
    got = np.asarray(fit.occluder_colour_share(jnp.asarray(image), occluder, skin, bins=12))

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
    occ = np.asarray(fit.estimate_occlusion(*args, 2.5, 0.15, close=1, colour_share=0.8))
    assert occ[5:15, 5:30].mean() == 1.0
    assert occ[15:25, 5:30].mean() > 0.95
    assert occ[40:50, 30:55].mean() < 0.05
    plain = np.asarray(fit.estimate_occlusion(*args, 2.5, 0.15, close=1))
    assert plain[5:15, 5:30].mean() == 1.0 and plain[15:25, 5:30].mean() < 0.05


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
    mask = np.asarray(fit.feature_mask(jnp.asarray(lms), 80, margin=2.0))
    parts = np.asarray(fit.feature_masks(jnp.asarray(lms), 80, margin=2.0))
    assert parts.shape == (4, 80, 80)
    np.testing.assert_array_equal(parts.max(0), mask)
    assert mask[30, 26] == 1 and mask[30, 56] == 1  # eye centres (row y, column x)
    assert mask[20, 25] == 1  # on a brow
    assert mask[60, 40] == 1  # inside the inner mouth
    assert (
        mask[70, 40] == 0 and mask[25, 45] == 0 and mask[45, 10] == 0
    )  # chin, between brows, cheek


def test_hidden_landmarks_weigh_the_given_share():
    occlusion = jnp.zeros((10, 10)).at[2:5, 6:9].set(1.0)
    # (x, y) pixels: inside the block (col 7, row 3), its edge pixel (col 6.0, row 2.9), outside,
    # and off the image (clamped to the border pixel, which is visible).
    points = jnp.array([[7.5, 3.5], [6.0, 2.9], [5.99, 3.0], [-4.0, 30.0]])
    for weight in (0.0, 0.5, 1.0):
        got = np.asarray(fit.hidden_landmark_weights(occlusion, points, weight))
        np.testing.assert_allclose(got, [weight, weight, 1.0, 1.0])


def test_landmark_stage_recovers_the_pose(default_model):
    model = default_model.face_only().to_jax()
    layout = CoeffLayout.for_model(model)
    camera = deng_camera(224)
    truth = layout.zeros()
    truth["angles"] = jnp.array([0.1, 0.35, -0.05])
    truth["translation"] = jnp.array([0.05, -0.08, 0.0])
    jaw = contour.for_model(model)  # the jaw landmarks follow the outline, in target and fit
    target = fit.project_landmarks(model, truth, camera, jaw)
    coeffs, losses = fit._landmark_stage(
        model,
        fit.initial_coeffs(layout),
        target,
        jnp.asarray(fit.landmark_weights(1.0)),
        jnp.array([1e-2, 1e-3]),
        200,
        0.03,
        model.exp_kind,
        camera,
        jaw,
    )
    assert float(losses[-1]) < 0.01 * float(losses[0])
    np.testing.assert_allclose(coeffs["angles"], truth["angles"], atol=0.03)


@pytest.fixture(scope="module")
def fitted_with_occluder(default_model):
    """A face rendered with known coefficients, a grey block pasted on its cheek, fitted with that
    block given as the occlusion mask (the 'test' config: small and quick)."""
    full = default_model
    face = full.face_only()
    layout = CoeffLayout.for_model(face)
    truth = layout.zeros()
    truth["angles"] = jnp.array([0.05, 0.2, 0.0])
    truth["tex"] = truth["tex"].at[0].set(1.0)
    r = render(face.to_jax(), truth, deng_camera(224), background=jnp.full((224, 224, 3), 0.2))
    image = np.asarray(r.image).copy()
    occluder = np.zeros((224, 224), np.float32)
    occluder[120:170, 60:110] = 1
    image[occluder > 0] = [0.1, 0.6, 0.9]
    config = load_config("fit", "test")
    fitter = fit.Fitter(face, config, full)
    result = fitter(image, np.asarray(r.landmarks), occlusion=occluder)
    return result, image, occluder, full, fitter, np.asarray(r.landmarks), np.asarray(r.mask)


def test_fit_lowers_the_loss_and_keeps_the_occluder_off_the_texture(fitted_with_occluder):
    result, image, occluder, full = fitted_with_occluder[:4]
    history = result.history["total"]
    assert history[-1] < history[0]
    assert result.vertices.shape == (full.n_vertices, 3)
    assert np.array_equal(result.occlusion, occluder)
    # No vertex takes its colour from the occluder; visible ones match the photo.
    camera = deng_camera(224)
    from occface_jax.render import camera as cam

    world = cam.rigid_transform(
        jnp.asarray(result.vertices),
        jnp.asarray(result.coeffs["angles"]),
        jnp.asarray(result.coeffs["translation"]),
    )
    px = np.asarray(cam.project_perspective(world, camera))
    col = np.clip(px[:, 0].astype(int), 0, 223)
    row = np.clip(px[:, 1].astype(int), 0, 223)
    under = occluder[row, col] > 0
    assert not result.vertex_visible[under].any()
    blue = np.linalg.norm(result.vertex_colors - [0.1, 0.6, 0.9], axis=1) < 0.2
    assert blue.sum() == 0
    visible = result.vertex_visible
    assert visible.sum() > 1000
    # The eyeballs seen between the lids take the photo too (checked with the skin below); the
    # rest of the head, off the face region, does not.
    eyes = np.asarray(full.eye_region)
    assert (visible & eyes).sum() > 20
    assert not (visible & ~eyes & ~np.asarray(full.face_region)).any()
    err = np.abs(result.vertex_colors[visible] - image[row[visible], col[visible]]).mean()
    assert err < 0.05


def test_a_predicted_mask_is_confirmed_or_freed_and_the_estimate_adds_to_it(fitted_with_occluder):
    """A network's mask (here: half of the true block, plus a false block on clean skin) is kept out
    from the first step; the residual confirms the true half, frees the false block, and finds the
    rest of the true block, so the final occlusion is the whole true block."""
    _, image, occluder, _, fitter, landmarks, face_mask = fitted_with_occluder
    predicted = occluder.copy()
    predicted[:, 85:] = 0  # the network found the block's left half only ...
    false = np.zeros_like(predicted)
    false[100:130, 130:160] = 1  # ... and called clean skin on the other cheek occluded
    on_face = face_mask > 0.5
    assert (false * on_face).sum() == false.sum()
    result = fitter(image, landmarks, predicted=np.maximum(predicted, false))
    left = (predicted > 0) & on_face
    right = (occluder > 0) & (predicted == 0) & on_face
    assert result.occlusion[left].mean() > 0.95
    assert result.occlusion[right].mean() > 0.8
    assert result.occlusion[false > 0].mean() < 0.3
    assert result.occlusion[on_face & (occluder == 0) & (false == 0)].mean() < 0.05


def test_the_second_pass_starts_with_the_first_passs_mask(fitted_with_occluder):
    """With ``robust_restart`` the second pass fits from its first step with the mask pass 1 ended
    on (not one estimated from the landmark fit's unlit mean-albedo render, which is near empty)."""
    _, image, occluder, full, _, landmarks, face_mask = fitted_with_occluder
    image = np.clip(1.6 * image, 0, 1)  # brighter than the unlit mean face everywhere
    config = load_config("fit", "test")
    assert config.robust and config.robust_restart
    fitter = fit.Fitter(full.face_only(), config, full)
    masks, chunk = [], fitter._chunk

    def recording_chunk(*args):
        masks.append(np.asarray(args[-1]))
        return chunk(*args)

    fitter._chunk = recording_chunk
    result = fitter(image, landmarks)
    per_pass = len(masks) // 2
    assert masks[0].sum() == 0  # pass 1 starts unmasked
    small = config.render_size

    def shrink(a):
        return np.asarray(jax.image.resize(jnp.asarray(a, jnp.float32), (small, small), "nearest"))

    block, on_face = shrink(occluder) > 0.5, shrink(face_mask) > 0.5
    first = masks[per_pass]
    assert first[block & on_face].mean() > 0.8
    assert result.occlusion[(occluder > 0) & (face_mask > 0.5)].mean() > 0.8


def test_deocclusion_repaints_a_hidden_mouth_opening_from_the_head(default_model):
    """The face region has an opening between the lips, the full model a mouth interior: an
    occluder over the mouth repaints the opening from the head's render; one on the cheek leaves
    it (and everything outside the occluder) alone."""
    full, face = default_model, default_model.face_only()
    rows = 3 * np.asarray(full.landmarks68)[[62, 66]] + 1  # inner lips, top and bottom: y
    opening_per_shape = full.exp_basis[rows[0]] - full.exp_basis[rows[1]]
    coeffs = CoeffLayout.for_model(face).zeros()
    coeffs["exp"] = coeffs["exp"].at[int(np.argmax(opening_per_shape))].set(1.0)  # mouth open
    camera = deng_camera(224)
    r_face = render(face.to_jax(), coeffs, camera)
    r_head = render(full.to_jax(), coeffs, camera)
    face_mask, head_mask = np.asarray(r_face.mask), np.asarray(r_head.mask)
    landmarks = np.asarray(r_face.landmarks)
    mouth = np.asarray(fit.feature_masks(jnp.asarray(landmarks), 224, 6.0)[fit.INNER_MOUTH]) > 0.5
    opening = mouth & (face_mask < 0.5) & (head_mask > 0.5)
    assert opening.sum() > 30

    def block(center, half):
        b = np.zeros((224, 224), np.float32)
        x, y = np.round(center).astype(int)
        b[y - half : y + half, x - half : x + half] = 1
        return b * (face_mask > 0.5)

    args = (r_face.image, r_face.mask, r_head.image, r_head.mask)
    over_mouth = block(landmarks[48:68].mean(0), 30)
    region, colours = map(np.asarray, fit.deocclusion_fill(*args, over_mouth, mouth))
    assert region[opening].min() == 1.0
    np.testing.assert_allclose(colours[opening], np.asarray(r_head.image)[opening])
    on_face = face_mask > 0.5
    np.testing.assert_allclose(colours[on_face], np.asarray(r_face.image)[on_face])
    assert region[(over_mouth == 0) & ~mouth].max() == 0.0
    on_cheek = block(landmarks[2] + [25, 0], 12)
    region, _ = map(np.asarray, fit.deocclusion_fill(*args, on_cheek, mouth))
    assert region[opening].max() == 0.0
    np.testing.assert_allclose(region, on_cheek * np.maximum(face_mask, head_mask))
