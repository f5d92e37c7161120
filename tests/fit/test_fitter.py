"""The fitter: the landmark stage, whole fits with a given, a predicted and an estimated occluder,
and the fit's steps against the same fit assembled by hand from the modules' pieces."""

from __future__ import annotations

import copy
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from occface_jax.config import load_config
from occface_jax.errors import OccfaceError
from occface_jax.fit.features import INNER_MOUTH, feature_masks
from occface_jax.fit.fitter import (
    Fitter,
    coefficient_blocks,
    constraint_violation,
    initial_coeffs,
    landmark_stage,
    project_constraints,
    with_landmark_vertices,
)
from occface_jax.fit.objective import (
    FaceRenderer,
    fit_objective,
    hidden_landmark_weights,
    landmark_weights,
)
from occface_jax.fit.occlusion import estimate_occlusion
from occface_jax.losses.recon import LossWeights
from occface_jax.morphable import CoeffLayout, contour, geometry
from occface_jax.morphable.correspondence import save_ibug68
from occface_jax.morphable.rendering import project_landmarks, render
from occface_jax.render import deng_camera
from occface_jax.render.antialias import mesh_adjacency


def test_landmark_stage_recovers_the_pose(default_model):
    model = default_model.face_only().to_jax()
    layout = CoeffLayout.for_model(model)
    camera = deng_camera(224)
    truth = layout.zeros()
    truth["angles"] = jnp.array([0.1, 0.35, -0.05])
    truth["translation"] = jnp.array([0.05, -0.08, 0.0])
    jaw = contour.for_model(model)  # the jaw landmarks follow the outline, in target and fit
    target = project_landmarks(model, truth, camera, jaw)
    coeffs, losses = landmark_stage(
        model,
        initial_coeffs(layout),
        target,
        jnp.asarray(landmark_weights(1.0)),
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
    fitter = Fitter(face, config, full)
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
    config.robust_restart_landmarks = True
    fitter = Fitter(full.face_only(), config, full)
    masks, piece, chunk_starts, reruns = [], fitter._piece, [], []

    def recording_piece(name, devices):
        run = piece(name, devices)
        if name not in ("chunk", "relandmark"):
            return run

        def recorded(shared, batched):
            if name == "relandmark":  # (start, faces, occlusion) -> (coefficients, losses)
                out = run(shared, batched)
                reruns.append((batched[0], np.asarray(batched[2][0]), out[0]))
                return out
            masks.append(np.asarray(batched[3][0]))  # the occlusion map of the batch's one face
            chunk_starts.append(batched[0])
            return run(shared, batched)

        return recorded

    fitter._piece = recording_piece
    result = fitter(image, landmarks)
    per_pass = len(masks) // 2
    assert masks[0].sum() == 0  # pass 1 starts unmasked
    small = config.render_size

    def shrink(a):
        return np.asarray(jax.image.resize(jnp.asarray(a, jnp.float32), (small, small), "nearest"))

    block, on_face = shrink(occluder) > 0.5, shrink(face_mask) > 0.5
    first = masks[per_pass]
    assert first[block & on_face].mean() > 0.8
    # The landmark stage ran again once, from the fit's start, under that mask; pass 2 starts
    # from what it gave.
    ((start, mask, again),) = reruns
    np.testing.assert_array_equal(mask, first)
    for name, value in initial_coeffs(fitter.layout).items():
        np.testing.assert_array_equal(np.asarray(start[name][0]), np.asarray(value))
    for name in ("id", "exp", "angles", "translation"):
        np.testing.assert_array_equal(np.asarray(chunk_starts[per_pass][name]), np.asarray(again[name]))  # fmt: skip
    assert result.occlusion[(occluder > 0) & (face_mask > 0.5)].mean() > 0.8


def _fit_by_hand(face, config, image, landmarks):
    """The robust fit with restart written out step by step from the modules' functions (one
    jitted Adam step at a time, no scan): (coefficients, occlusion at the render size)."""
    small, size = int(config.render_size), int(config.image_size)
    img = jax.image.resize(jnp.asarray(image), (small, small, 3), "linear", antialias=True)
    target = jnp.asarray(landmarks) * (small / size)
    jface, layout = face.to_jax(), CoeffLayout.for_model(face, light=config.light)
    jaw = contour.for_model(face)
    w = LossWeights(**dict(config.weights))
    base = jnp.asarray(landmark_weights(config.jaw_landmark_weight, config.eye_landmark_weight))

    def landmark_fit(weights):
        return landmark_stage(
            jface,
            initial_coeffs(layout),
            jnp.asarray(landmarks),
            weights,
            jnp.array([w.w_id, w.w_exp]) * float(config.landmark_prior_scale),
            int(config.landmark_steps),
            float(config.landmark_lr),
            face.exp_kind,
            deng_camera(size),
            jaw,
        )[0]

    start = landmark_fit(base)
    renderer = FaceRenderer(
        deng_camera(small), float(config.ambient), mesh_adjacency(face.triangles), jaw
    )
    objective = functools.partial(
        fit_objective, renderer=renderer, weights=w, robust_scale=config.phot_robust_scale
    )
    adam = optax.adam(config.lr)

    frozen = coefficient_blocks(config, "photometric_frozen", layout)

    @jax.jit
    def step(params, state, weights, occlusion):
        grads = jax.grad(lambda p: objective(p, jface, img, target, weights, occlusion, None)[0])
        grads = {k: 0 * g if k in frozen else g for k, g in grads(params).items()}
        updates, state = adam.update(grads, state, params)
        return project_constraints(optax.apply_updates(params, updates), face.exp_kind), state

    features = feature_masks(target, small, config.feature_margin * small / size)

    @jax.jit
    def estimate(params):
        r = renderer(jface, params, img)
        return estimate_occlusion(
            img,
            r.image,
            r.mask,
            config.robust_ratio,
            config.robust_min_residual,
            features.max(0),
            config.robust_close,
            None,
            config.predicted_confirm_ratio,
            features[INNER_MOUTH : INNER_MOUTH + 1],
            colour_share=config.robust_colour_share,
        )

    def one_pass(start, occlusion):
        params, state = start, adam.init(start)
        for k in range(config.steps):
            if k % config.robust_every == 0:
                if k >= config.robust_start:
                    occlusion = estimate(params)
                weights = base * hidden_landmark_weights(
                    occlusion, target, config.hidden_landmark_weight
                )
            params, state = step(params, state, weights, occlusion)
        return params

    params = one_pass(start, jnp.zeros((small, small)))
    occlusion = estimate(params)
    if config.robust_restart_landmarks:  # the landmark stage again, the points under it weighed
        hidden = config.restart_landmark_hidden_weight
        start = landmark_fit(base * hidden_landmark_weights(occlusion, target, hidden))
    params = one_pass(start, occlusion)
    return params, estimate(params)


def test_the_fits_steps_equal_the_fit_written_out_by_hand(fitted_with_occluder):
    """The Fitter's named steps (landmark stage, two photometric passes with the occlusion
    estimated between chunks, the final estimate) give the shape, pose and mask of the same fit
    assembled by hand. Not to the last bit: one jitted step at a time rounds differently from the
    Fitter's scan, and the estimate's thresholds (a multiple of the median residual) can flip a
    pixel on such a difference and carry it on; the bounds are far below what the fit resolves
    (0.05 mm of shape, 0.1 degree of pose, 1% of the face's mask pixels)."""
    _, image, _, full, fitter, landmarks, face_mask = fitted_with_occluder
    config = copy.deepcopy(fitter.config)
    assert config.robust and config.robust_restart and config.march_jaw
    # Without the landmark stage's rerun under the mask: a landmark's weight there is 1 or 0.1 by
    # one pixel of the mask, so a pixel the estimate flips on a rounding difference moves the
    # pose by more than these bounds. The rerun is checked on its own (its piece against
    # ``landmark_stage`` written out, and its inputs in the fit: the tests below and above).
    config.robust_restart_landmarks = False
    result = Fitter(full.face_only(), config, full)(image, landmarks)
    face = full.face_only()
    params, occlusion = _fit_by_hand(face, config, image, landmarks)
    jface = face.to_jax()
    got = geometry.shape(jface, jnp.asarray(result.coeffs["id"]), jnp.asarray(result.coeffs["exp"]))
    want = geometry.shape(jface, params["id"], params["exp"])
    assert float(jnp.abs(got - want).max()) < 0.05
    for name in ("angles", "translation"):
        np.testing.assert_allclose(result.coeffs[name], params[name], atol=2e-3, err_msg=name)
    size = int(config.image_size)
    mask = np.asarray(jax.image.resize(occlusion, (size, size), "nearest"))
    on_face = face_mask > 0.5
    assert mask[on_face].mean() > 0.05  # the block is found
    assert (result.occlusion[on_face] != mask[on_face]).mean() < 0.01


def test_dense_landmarks_pull_the_fit_to_them(default_model):
    """Targets from the true surface's 468 correspondences: the landmark stage with them alone
    (the 68 weighted 0) recovers the pose, and the whole fit's dense points land on them."""
    from occface_jax.morphable.rendering import project_dense

    full = default_model
    face = full.face_only()
    model = face.to_jax()
    layout = CoeffLayout.for_model(face)
    truth = layout.zeros()
    truth["angles"] = jnp.array([0.05, -0.3, 0.02])
    camera = deng_camera(224)
    config = load_config("fit", "test")
    fitter = Fitter(face, config, full)
    points, weights = fitter.dense_points()
    dense, _ = project_dense(model, truth, camera, points)
    r = render(model, truth, camera, background=jnp.full((224, 224, 3), 0.3))
    inputs = fitter.prepare(np.asarray(r.image), np.asarray(r.landmarks), np.asarray(dense))
    coeffs, losses = landmark_stage(
        model,
        initial_coeffs(layout),
        inputs.landmarks,
        jnp.zeros(68),
        jnp.array([1e-2, 1e-3]),
        200,
        0.03,
        face.exp_kind,
        camera,
        None,
        fitter.dense_term(inputs, None),
        1.0,
    )
    assert float(losses[-1]) < 0.01 * float(losses[0])
    np.testing.assert_allclose(coeffs["angles"], truth["angles"], atol=0.03)
    result = fitter(np.asarray(r.image), np.asarray(r.landmarks), dense_landmarks=np.asarray(dense))
    error = np.linalg.norm(result.dense_landmarks - np.asarray(dense), axis=1)
    assert result.dense_landmarks.shape == (468, 2) and float(np.median(error)) < 2.0
    assert "dense" in result.history


def _posed_face(face):
    """(coefficients, render at 224 on grey) of a turned face with one blendshape and one albedo
    mode set."""
    truth = CoeffLayout.for_model(face).zeros()
    truth["angles"] = jnp.array([0.1, -0.25, 0.0])
    truth["exp"] = truth["exp"].at[3].set(0.6)
    truth["tex"] = truth["tex"].at[1].set(0.8)
    return truth, render(
        face.to_jax(), truth, deng_camera(224), background=jnp.full((224, 224, 3), 0.3)
    )


def test_a_given_start_is_where_the_fit_begins(default_model):
    """``start`` replaces the mean face: with no steps at all the result is the start itself (its
    landmarks those of a render of it), and a start of another layout is one line."""
    full = default_model
    face = full.face_only()
    truth, r = _posed_face(face)
    config = load_config("fit", "test")
    config.steps, config.landmark_steps = 0, 0
    fitter = Fitter(face, config, full)
    start = {k: np.asarray(v) for k, v in truth.items()}
    result = fitter(np.asarray(r.image), np.asarray(r.landmarks), start=start)
    for key, value in start.items():
        np.testing.assert_allclose(result.coeffs[key], value, atol=1e-6, err_msg=key)
    # (the jaw points follow the outline in the fit, not in this render: the inner 51 only)
    np.testing.assert_allclose(result.landmarks[17:], np.asarray(r.landmarks)[17:], atol=0.05)
    mean_face = fitter(np.asarray(r.image), np.asarray(r.landmarks))  # no start: the mean face
    assert float(np.abs(mean_face.coeffs["angles"]).max()) == 0.0
    bad = dict(start, id=start["id"][:-1])
    with pytest.raises(OccfaceError, match="do not match the model's layout") as err:
        fitter(np.asarray(r.image), np.asarray(r.landmarks), start=bad)
    assert "\n" not in str(err.value)


def test_constraint_violation_is_the_squared_distance_to_the_bounds():
    """0 inside [0, 1] blendshapes / [-3, 3] albedo; outside, the summed squared overshoot (a
    hand count), per example; with a gradient that points back inside."""
    coeffs = {
        "exp": jnp.array([[0.5, -0.5, 1.25], [0.0, 1.0, 0.3]]),
        "tex": jnp.array([[3.5, 0.0], [-3.0, 2.0]]),
        "id": jnp.array([[9.0], [-9.0]]),  # unbounded
    }
    violation = np.asarray(constraint_violation(coeffs, "blendshape"))
    np.testing.assert_allclose(violation, [0.25 + 0.0625 + 0.25, 0.0], rtol=1e-6)
    grad = jax.grad(lambda c: constraint_violation(c, "blendshape").sum())(coeffs)
    np.testing.assert_allclose(grad["exp"][0], [0.0, -1.0, 0.5], atol=1e-6)
    assert float(constraint_violation({"exp": jnp.array([[-2.0]])}, "pca")[0]) == 0.0


def test_the_landmark_vertices_file_sets_the_fits_inner_68(default_model, tmp_path):
    """``landmark_vertices``: a file's inner points (17-67) replace the model's in the fit, the jaw
    stays; the fitted landmarks are then the projections of the file's vertices, "model" keeps the
    model's own, and a file for another model is one line."""
    full = default_model
    face = full.face_only()
    ids = np.asarray(full.landmarks68).copy()
    mean = np.asarray(full.mean_shape)
    region = np.flatnonzero(np.asarray(full.face_region))
    for k in range(17, 68):  # each inner point moved to a face vertex 3-6 mm away
        d = np.linalg.norm(mean[region] - mean[ids[k]], axis=1)
        ids[k] = region[np.flatnonzero((d > 3) & (d < 6))[0]]
    path = save_ibug68(tmp_path / "ibug.npz", ids, full, face)
    assert with_landmark_vertices(face, "model") is face
    swapped = with_landmark_vertices(face, str(path))
    np.testing.assert_array_equal(swapped.landmarks68[:17], face.landmarks68[:17])
    np.testing.assert_allclose(np.asarray(swapped.mean_shape)[swapped.landmarks68[17:]], mean[ids[17:]], atol=1e-6)  # fmt: skip
    assert np.all(swapped.landmarks68[17:] != face.landmarks68[17:])

    layout = CoeffLayout.for_model(face)
    truth = layout.zeros()
    truth["angles"] = jnp.array([0.05, 0.2, 0.0])
    r = render(swapped.to_jax(), truth, deng_camera(224), background=jnp.full((224, 224, 3), 0.3))
    config = load_config("fit", "test")
    config.steps, config.landmark_steps = 0, 0
    config.landmark_vertices = str(path)
    result = Fitter(face, config, full)(np.asarray(r.image), np.asarray(r.landmarks), start=truth)
    np.testing.assert_allclose(result.landmarks[17:], np.asarray(r.landmarks)[17:], atol=0.05)
    with pytest.raises(Exception, match="derived for model 'other'"):
        with_landmark_vertices(face, str(save_ibug68(tmp_path / "o.npz", ids, full.replace(name="other"), face)))  # fmt: skip


@pytest.mark.slow(
    reason="compiles the fit twice, with and without the dense term (~70 s on 2 cores)"
)
def test_a_dense_slot_fits_a_face_without_dense_points_as_a_plain_fit(default_model):
    """With ``dense_slot`` a face the face mesh missed is fitted by the same compiled pieces as a
    face with dense points (zeros weighing 0 in the slot), and its result is that of a fit that
    never had the dense term."""
    from occface_jax.morphable.rendering import project_dense

    face = default_model.face_only()
    layout = CoeffLayout.for_model(face)
    truth = layout.zeros()
    truth["angles"] = jnp.array([0.05, -0.2, 0.02])
    camera = deng_camera(224)
    r = render(face.to_jax(), truth, camera, background=jnp.full((224, 224, 3), 0.3))
    image, landmarks = np.asarray(r.image), np.asarray(r.landmarks)
    config = load_config("fit", "test")
    slotted = Fitter(face, config, default_model)
    slotted.dense_slot = True
    dense, _ = project_dense(face.to_jax(), truth, camera, slotted.dense_points()[0])
    slotted(image, landmarks, dense_landmarks=np.asarray(dense))
    pieces = {key: piece._cache_size() for key, piece in slotted._compiled.items()}
    got = slotted(image + 0.02, landmarks)  # no dense points: nothing compiles again
    assert {key: piece._cache_size() for key, piece in slotted._compiled.items()} == pieces
    assert got.dense_landmarks is None and "dense" not in got.history
    want = Fitter(face, config, default_model)(image + 0.02, landmarks)
    for key, value in want.coeffs.items():
        np.testing.assert_allclose(got.coeffs[key], value, atol=1e-4, err_msg=key)
    np.testing.assert_allclose(got.vertices, want.vertices, atol=1e-2)


def test_frozen_blocks_keep_the_landmark_stages_values(default_model):
    """``photometric_frozen``: the photometric stage leaves the named blocks where the landmark
    stage put them (the same as a fit with no photometric steps) and still fits the others; a
    name that is no coefficient block is one line."""
    face = default_model.face_only()
    _, r = _posed_face(face)
    image, landmarks = np.asarray(r.image), np.asarray(r.landmarks)
    config = load_config("fit", "test")
    config.photometric_frozen = "id, exp"
    frozen = Fitter(face, config, default_model)(image, landmarks)
    config.steps = 0
    landmark_only = Fitter(face, config, default_model)(image, landmarks)
    for key in ("id", "exp"):
        np.testing.assert_array_equal(frozen.coeffs[key], landmark_only.coeffs[key], err_msg=key)
        assert float(np.abs(frozen.coeffs[key]).max()) > 0  # the landmark stage moved them
    for key in ("tex", "light"):  # fitted by the photometric stage alone
        assert float(np.abs(frozen.coeffs[key] - landmark_only.coeffs[key]).max()) > 1e-3, key
    config.photometric_frozen = "id,shape"
    with pytest.raises(OccfaceError, match="shape not a coefficient block") as err:
        Fitter(face, config, default_model)
    assert "\n" not in str(err.value)
    config.photometric_frozen, config.landmark_prior_scale = "", 0.0
    with pytest.raises(OccfaceError, match="landmark_prior_scale must be > 0"):
        Fitter(face, config, default_model)


def test_the_restart_refits_the_landmarks_under_the_mask(default_model):
    """``robust_restart_landmarks``: the landmark stage again from a start, the points under the
    occlusion weighing ``restart_landmark_hidden_weight``. Against ``landmark_stage`` written out
    with those weights; with no occlusion it is the plain stage; mouth points that an occluder
    displaced (pulled down, as the face mesh does under a donut) open the fitted mouth less."""
    from occface_jax.fit.fitter import Shared

    full = default_model
    face = full.face_only()
    model = face.to_jax()
    camera = deng_camera(224)
    config = load_config("fit", "test")
    config.restart_landmark_hidden_weight = 0.1
    fitter = Fitter(face, config, full)
    truth = CoeffLayout.for_model(face).zeros()
    r = render(model, truth, camera, background=jnp.full((224, 224, 3), 0.3))
    landmarks = np.asarray(r.landmarks).copy()
    landmarks[48:68, 1] += np.where(np.isin(np.arange(48, 68), [48, 54, 60, 64]), 0.0, 6.0)
    landmarks[[56, 57, 58, 65, 66, 67], 1] += 6.0  # the lower lip further: an open mouth
    inputs = fitter.prepare(np.asarray(r.image), landmarks)
    faces = fitter.stack([inputs], [None])
    shared = Shared(fitter.jmodel, fitter.jfull, fitter.identity_state, None)
    start = jax.tree.map(lambda a: a[None], initial_coeffs(fitter.layout))
    size = fitter.render_size
    mouth = np.asarray(faces.target[0, 48:68])
    occlusion = np.zeros((1, size, size), np.float32)
    x0, y0 = np.floor(mouth.min(axis=0) - 2).astype(int)
    x1, y1 = np.ceil(mouth.max(axis=0) + 2).astype(int)
    occlusion[0, y0:y1, x0:x1] = 1.0
    again, _ = fitter._piece("relandmark", 1)(shared, (start, faces, jnp.asarray(occlusion)))
    factor = hidden_landmark_weights(jnp.asarray(occlusion[0]), faces.target[0], 0.1)
    assert float(factor[48:68].max()) == pytest.approx(0.1) and float(factor[:48].min()) == 1.0
    by_hand, _ = landmark_stage(
        model,
        initial_coeffs(fitter.layout),
        faces.landmarks[0],
        fitter.base_landmark_weights * factor,
        jnp.array([fitter.weights.w_id, fitter.weights.w_exp]) * fitter.landmark_prior_scale,
        int(config.landmark_steps),
        float(config.landmark_lr),
        face.exp_kind,
        fitter.camera,
        fitter.jaw,
    )
    for name in ("id", "exp", "angles", "translation"):
        np.testing.assert_allclose(again[name][0], by_hand[name], atol=1e-4, err_msg=name)
    plain, _ = fitter._piece("landmark", 1)(shared, (start, faces))
    unmasked, _ = fitter._piece("relandmark", 1)(shared, (start, faces, jnp.zeros_like(jnp.asarray(occlusion))))  # fmt: skip
    for name in ("id", "exp", "angles", "translation"):
        np.testing.assert_allclose(unmasked[name], plain[name], atol=1e-6, err_msg=name)

    def opening(coeffs):  # lower minus upper inner lip, pixels at 224
        points = project_landmarks(model, jax.tree.map(lambda a: a[0], coeffs), camera, fitter.jaw)
        return float(points[66, 1] - points[62, 1])

    excess = {"plain": opening(plain) - float(r.landmarks[66, 1] - r.landmarks[62, 1])}
    excess["0.1"] = opening(again) - opening(plain) + excess["plain"]
    config.restart_landmark_hidden_weight = 0.0  # the displaced points left out
    dropped, _ = Fitter(face, config, full)._piece("relandmark", 1)(shared, (start, faces, jnp.asarray(occlusion)))  # fmt: skip
    excess["0"] = opening(dropped) - opening(plain) + excess["plain"]
    assert excess["plain"] > 4.0  # the displaced points open the mouth (pixels at 224)
    assert excess["0.1"] < 0.85 * excess["plain"] and abs(excess["0"]) < 1.0, excess
