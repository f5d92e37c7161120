"""Per-image fitting of the morphable model (analysis by synthesis), robust to occluders.

Works in Deng et al.'s aligned crop (224 x 224, perspective camera, see ``render.camera``); the
steps of :meth:`Fitter.__call__`:

1. Landmark stage: pose (angles, translation) plus identity and expression from the 68 landmarks
   alone (``objective.landmark_stage_loss``), on the landmark vertices only, cheap. With
   ``march_jaw`` the model's jaw landmarks follow the face's outline under the current pose
   (``morphable.contour``), as a detector's do, here and in the photometric stage.
2. Photometric pass: every coefficient, ``objective.fit_objective`` (Eq. 15: photometric with
   attention, landmarks, prior, and with ``use_identity`` the identity feature term), in chunks of
   ``robust_every`` Adam steps (one ``lax.scan`` each).
3. Occlusion estimate between chunks (``occlusion.estimate_occlusion``) from step
   ``robust_start`` on, unless a mask is given; landmarks under it count
   ``hidden_landmark_weight`` of a visible one. A mask predicted by a network (``predicted``) is
   out from the first step; from the first estimate on the network proposes and the residual
   confirms (``predicted_confirm_ratio``).
4. Restart (``robust_restart``): a second pass from the landmark fit with the mask the first
   pass ended on, so the early, unmasked steps leave no trace.
5. Texture (``texture.vertex.vertex_texture``): visible face vertices take the photo's colour,
   the rest the albedo under the fitted light, so the output texture carries no occluder.
6. Fill (``deocclusion.deocclusion_fill``): what a de-occluded photo repaints, and with what.

Blendshape expression weights are kept in [0, 1], albedo coefficients in [-3, 3], by projection
after every step.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from occface_jax.errors import OccfaceError
from occface_jax.fit.deocclusion import deocclusion_fill
from occface_jax.fit.features import INNER_MOUTH, eye_brow_regions, feature_masks
from occface_jax.fit.objective import (
    DenseLandmarks,
    FaceRenderer,
    IdentityTerm,
    fit_objective,
    hidden_landmark_weights,
    landmark_stage_loss,
    landmark_weights,
)
from occface_jax.fit.occlusion import estimate_occlusion
from occface_jax.losses.recon import LossWeights
from occface_jax.models.face_id import load_face_id_net
from occface_jax.morphable import CoeffLayout, MorphableModel, contour
from occface_jax.morphable.correspondence import load_correspondence
from occface_jax.morphable.rendering import Rendering, project_dense, render
from occface_jax.render import camera as cam
from occface_jax.render.antialias import mesh_adjacency
from occface_jax.texture.vertex import vertex_texture

Coeffs = dict[str, jax.Array]


@dataclasses.dataclass
class FitResult:
    """What a fit produces, in the aligned crop's frame (pixels, x right, y down).

    coeffs: the coefficient blocks. vertices: (N, 3) mm of the full model, model frame.
    occlusion: (H, W) float, 1 = pixel judged occluded (given or estimated).
    rendered: (H, W, 3) render of the fitted face; face_mask: (H, W) its coverage.
    landmarks: (68, 2) projected model landmarks. vertex_colors: (N, 3) output texture in [0, 1].
    vertex_visible: (N,) bool, vertices whose colour came from the photo. history: loss per step.
    dense_landmarks: (468, 2) the fitted surface's points corresponding to MediaPipe's face mesh
    (projected), when the fit was given dense landmarks, else None.
    fill_region: (H, W) float, the pixels a de-occluded photo repaints: the occlusion and, when
    that hides the inner mouth, the mouth opening the face region leaves (its render has no
    surface there). fill: (H, W, 3) their colours: the face render where it covers, else the
    full model's (its mouth interior).
    """

    coeffs: dict[str, np.ndarray]
    vertices: np.ndarray
    occlusion: np.ndarray
    rendered: np.ndarray
    face_mask: np.ndarray
    landmarks: np.ndarray
    vertex_colors: np.ndarray
    vertex_visible: np.ndarray
    history: dict[str, np.ndarray]
    fill_region: np.ndarray
    fill: np.ndarray
    dense_landmarks: np.ndarray | None = None


TEX_LIMIT = 3.0  # albedo coefficients are N(0, 1): keep them within 3 standard deviations


def project_constraints(coeffs: Coeffs, exp_kind: str) -> Coeffs:
    """Blendshape weights into [0, 1]; albedo coefficients into [-3, 3] (their prior's 3 sigma)."""
    if "tex" in coeffs:
        coeffs = dict(coeffs, tex=jnp.clip(coeffs["tex"], -TEX_LIMIT, TEX_LIMIT))
    if exp_kind == "blendshape":
        coeffs = dict(coeffs, exp=jnp.clip(coeffs["exp"], 0.0, 1.0))
    return coeffs


def constraint_violation(coeffs: Coeffs, exp_kind: str) -> jax.Array:
    """Squared distance (leading axes kept) of ``coeffs`` to the set :func:`project_constraints`
    projects onto: 0 inside the bounds, growing outside (a penalty with a gradient where the
    projection has none)."""
    projected = project_constraints(coeffs, exp_kind)
    return sum(
        jnp.sum((coeffs[k] - projected[k]) ** 2, axis=-1) for k in ("tex", "exp") if k in coeffs
    )


def initial_coeffs(layout: CoeffLayout) -> Coeffs:
    """Mean face, frontal, at Deng et al.'s default distance; light zero (the renderer adds the
    ambient term)."""
    return layout.zeros()


@functools.partial(jax.jit, static_argnames=("steps", "lr", "exp_kind"))
def landmark_stage(
    model: MorphableModel,
    coeffs: Coeffs,
    target: jax.Array,
    weights: jax.Array,
    prior_weights: jax.Array,
    steps: int,
    lr: float,
    exp_kind: str,
    camera: cam.PerspectiveCamera,
    jaw: contour.JawContour | None,
    dense: DenseLandmarks | None = None,
    dense_weight: jax.Array | float = 1.0,
) -> tuple[Coeffs, jax.Array]:
    """``steps`` Adam steps (rate ``lr``) of :func:`~occface_jax.fit.objective.landmark_stage_loss`
    on id, exp, angles and translation from ``coeffs``; returns the coefficients and the loss per
    step (``steps``,). With ``dense``, the dense term counts ``dense_weight`` times."""
    params = {k: coeffs[k] for k in ("id", "exp", "angles", "translation")}
    opt = optax.adam(lr)

    def step(carry, _):
        p, state = carry
        loss, grads = jax.value_and_grad(landmark_stage_loss)(
            p, coeffs, model, target, weights, prior_weights, camera, jaw, dense, dense_weight
        )
        updates, state = opt.update(grads, state, p)
        p = project_constraints(optax.apply_updates(p, updates), exp_kind)
        return (p, state), loss

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return dict(coeffs, **params), losses


class FitInputs(NamedTuple):
    """One crop prepared for the fit. photo: (S, S, 3) the crop; image: (R, R, 3) it at the render
    size; landmarks: (68, 2) at S; target: (68, 2) at R; features: (4, R, R) the feature masks
    (``features.feature_masks``) of the target; identity: (network state, the photo's descriptor)
    when the identity term is on, else None; dense_landmarks: (468, 2) MediaPipe's points at S and
    dense_target at R, or None."""

    photo: jax.Array
    image: jax.Array
    landmarks: jax.Array
    target: jax.Array
    features: jax.Array
    identity: tuple[Any, jax.Array] | None
    dense_landmarks: jax.Array | None = None
    dense_target: jax.Array | None = None


class Fitter:
    """Fits one morphable model under one config; the jitted steps compile once and are reused
    across images (``occface reconstruct`` keeps one Fitter for a whole batch).

    ``model`` is what is rendered and fitted (e.g. the face region); ``full_model`` (same
    coefficients, more vertices, e.g. the whole head) is what the output mesh and texture use.
    Photometric fitting runs at ``config.render_size`` (the crop and landmarks are rescaled and
    the camera scaled with them, so the geometry is the same as at 224).
    """

    def __init__(
        self,
        model: MorphableModel,
        config: ml_collections.ConfigDict,
        full_model: MorphableModel | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.full_model = full_model or model
        self.size = int(config.image_size)
        self.render_size = int(config.render_size)
        self.camera = cam.deng_camera(self.size)
        self.layout = CoeffLayout.for_model(model, light=config.light)
        self.jaw = contour.for_model(model) if config.march_jaw else None
        self.renderer = FaceRenderer(
            cam.deng_camera(self.render_size),
            float(config.ambient),
            mesh_adjacency(model.triangles),
            self.jaw,
        )
        self.full_adjacency = mesh_adjacency(self.full_model.triangles)
        self.jmodel = model.to_jax()
        self.jfull = self.full_model.to_jax()
        self.weights = LossWeights(**{k: float(v) for k, v in config.weights.items()})
        if self.weights.land <= 0:
            raise OccfaceError(
                f"weights.land must be > 0 (got {self.weights.land}): the landmark stage fits the "
                "pose to the landmarks, and the dense term is weighed relative to it"
            )
        self.base_landmark_weights = jnp.asarray(landmark_weights(config.jaw_landmark_weight))
        self.optimizer = optax.adam(float(config.lr))
        self.identity, self.identity_state = None, None
        if config.use_identity:
            graphdef, self.identity_state = nnx.split(load_face_id_net())
            self.identity = IdentityTerm(graphdef)
            self._embed = jax.jit(self.identity.embed)
        self._objective = functools.partial(
            fit_objective,
            renderer=self.renderer,
            weights=self.weights,
            robust_scale=float(config.phot_robust_scale),
            identity=self.identity,
        )
        self._dense_points = None  # the model's 468 correspondences, loaded on first use
        self._project_dense = jax.jit(
            lambda model, params, points: project_dense(model, params, self.camera, points)[0]
        )
        self._chunk = jax.jit(self._chunk_impl)
        self._estimate = jax.jit(self._estimate_impl)
        self._texture = jax.jit(self._texture_impl)
        self._fill = jax.jit(self._fill_impl)
        margin = float(config.feature_margin) * self.render_size / self.size
        self._features = jax.jit(
            functools.partial(feature_masks, size=self.render_size, margin=margin)
        )

    # -- jitted pieces, each compiled once ------------------------------------------------------
    def _chunk_impl(
        self, params, opt_state, model, image, target, lm_weights, identity, occlusion, dense
    ):
        """``robust_every`` Adam steps of the objective under a fixed ``occlusion`` map."""

        def step(carry, _):
            p, state = carry
            (loss, terms), grads = jax.value_and_grad(self._objective, has_aux=True)(
                p, model, image, target, lm_weights, occlusion, identity, dense=dense
            )
            updates, state = self.optimizer.update(grads, state, p)
            p = project_constraints(optax.apply_updates(p, updates), self.model.exp_kind)
            return (p, state), dict(terms, total=loss)

        length = int(self.config.robust_every)
        (params, opt_state), history = jax.lax.scan(step, (params, opt_state), None, length=length)
        return params, opt_state, history

    def _estimate_impl(self, params, model, image, features, proposed):
        """The current render (at ``render_size``) and the occlusion estimated from its residual,
        with ``proposed`` pixels (the mask network's) confirmed by a lower residual."""
        c = self.config
        r = self.renderer(model, params, image)
        occlusion = estimate_occlusion(
            image,
            r.image,
            r.mask,
            float(c.robust_ratio),
            float(c.robust_min_residual),
            jnp.max(features, axis=0),
            int(c.robust_close),
            proposed,
            float(c.predicted_confirm_ratio),
            features[INNER_MOUTH : INNER_MOUTH + 1],
            colour_share=float(c.robust_colour_share),
            yielding=eye_brow_regions(features) if bool(c.feature_protect_yield) else None,
        )
        return r, occlusion

    def _texture_impl(self, params, full, photo, occlusion, depth, coverage):
        return vertex_texture(
            full,
            params,
            self.camera,
            photo,
            occlusion,
            depth,
            coverage,
            self.renderer.ambient,
            bool(self.config.texture_from_photo),
        )

    def _fill_impl(self, params, full, face_image, face_mask, occlusion, mouth):
        head = render(
            full,
            params,
            self.camera,
            self.size,
            ambient=self.renderer.ambient,
            adjacency=self.full_adjacency,
        )
        return deocclusion_fill(face_image, face_mask, head.image, head.mask, occlusion, mouth)

    # -- the steps of a fit ---------------------------------------------------------------------
    def dense_points(self):
        """The fitted model's ``SurfacePoints`` for MediaPipe's 468 (loaded once)."""
        if self._dense_points is None:
            corr = load_correspondence(self.model)
            self._dense_points = (corr.surface_points(self.model), jnp.asarray(corr.weight))
        return self._dense_points

    def dense_term(self, inputs: FitInputs, occlusion: jax.Array | None) -> DenseLandmarks | None:
        """The dense term's inputs: at the crop size S for the landmark stage (``occlusion``
        None), else at the render size with points under ``occlusion`` down-weighted."""
        if inputs.dense_landmarks is None:
            return None
        points, weights = self.dense_points()
        floor = jnp.float32(self.config.dense_facing_weight)
        if occlusion is None:
            return DenseLandmarks(points, inputs.dense_landmarks, weights, floor)
        hidden = float(self.config.hidden_landmark_weight)
        weights = weights * hidden_landmark_weights(occlusion, inputs.dense_target, hidden)
        return DenseLandmarks(points, inputs.dense_target, weights, floor)

    def prepare(
        self, image: np.ndarray, landmarks: np.ndarray, dense_landmarks: np.ndarray | None = None
    ) -> FitInputs:
        """The crop, its landmarks (and dense landmarks) and feature masks at the render size
        (and the photo's identity descriptor when the identity term is on)."""
        size, small = self.size, self.render_size
        if image.shape[:2] != (size, size):
            raise ValueError(f"the fit needs a {size}x{size} aligned crop, got {image.shape[:2]}")
        photo = jnp.asarray(image, jnp.float32)
        resized = jax.image.resize(photo, (small, small, 3), "linear", antialias=True)
        landmarks = jnp.asarray(landmarks, jnp.float32)
        target = landmarks * (small / size)
        identity = None
        if self.identity is not None:
            embedding = self._embed(self.identity_state, resized, target)
            identity = (self.identity_state, embedding)
        dense = dense_target = None
        if dense_landmarks is not None:
            dense = jnp.asarray(np.asarray(dense_landmarks)[:, :2], jnp.float32)
            if dense.shape != (468, 2):
                raise ValueError(f"dense landmarks must be (468, 2), got {dense.shape}")
            dense_target = dense * (small / size)
        features = self._features(target)
        return FitInputs(photo, resized, landmarks, target, features, identity, dense, dense_target)

    def landmark_fit(
        self, inputs: FitInputs, start: Coeffs | None = None
    ) -> tuple[Coeffs, jax.Array]:
        """Step 1: the landmark stage (at the crop's own size) from ``start`` (e.g. a regressor's
        prediction), by default the mean face."""
        c, w = self.config, self.weights
        return landmark_stage(
            self.jmodel,
            initial_coeffs(self.layout) if start is None else start,
            inputs.landmarks,
            self.base_landmark_weights,
            jnp.array([w.w_id, w.w_exp]) * 10.0,
            int(c.landmark_steps),
            float(c.landmark_lr),
            self.model.exp_kind,
            self.camera,
            self.jaw,
            self.dense_term(inputs, None),
            jnp.float32(w.dense / w.land),
        )

    def checked_start(self, start: dict[str, np.ndarray]) -> Coeffs:
        """``start`` as the fit's coefficients: every block of the layout, of its size; projected
        into the fit's bounds. A mismatch (a regressor of another model) is one line."""
        sizes = dict(self.layout.blocks)
        shapes = {k: tuple(np.shape(v)) for k, v in start.items()}
        if shapes != {k: (n,) for k, n in sizes.items()}:
            raise OccfaceError(
                f"start coefficients {shapes} do not match the model's layout {sizes}"
            )
        coeffs = {k: jnp.asarray(v, jnp.float32) for k, v in start.items()}
        return project_constraints(coeffs, self.model.exp_kind)

    def initial_occlusion(
        self, occlusion: np.ndarray | None, predicted: np.ndarray | None
    ) -> tuple[jax.Array, jax.Array | None]:
        """The mask the photometric stage starts with, at the render size (the given one, the
        network's above ``predicted_threshold``, or none), and the network's proposal that the
        estimate is to confirm (None unless ``predicted`` is given without ``occlusion``)."""
        small = (self.render_size, self.render_size)
        if occlusion is not None:
            occ = jax.image.resize(jnp.asarray(occlusion, jnp.float32), small, "linear")
            return (occ > 0.5).astype(jnp.float32), None
        if predicted is not None:
            occ = jax.image.resize(jnp.asarray(predicted, jnp.float32), small, "linear")
            occ = (occ > float(self.config.predicted_threshold)).astype(jnp.float32)
            return occ, occ  # the network's pixels: out until the estimate confirms or frees them
        return jnp.zeros(small, jnp.float32), None

    def estimate(self, params: Coeffs, inputs: FitInputs, proposed: jax.Array | None) -> jax.Array:
        """Step 3: the occlusion (render size) estimated from the render of ``params``."""
        return self._estimate(params, self.jmodel, inputs.image, inputs.features, proposed)[1]

    def photometric_pass(
        self,
        start: Coeffs,
        inputs: FitInputs,
        occlusion: jax.Array,
        proposed: jax.Array | None,
        estimate: bool,
    ) -> tuple[Coeffs, jax.Array, list[dict[str, jax.Array]]]:
        """Step 2: ``steps`` photometric steps from ``start`` in chunks of ``robust_every``, the
        occlusion re-estimated before each chunk from step ``robust_start`` on when ``estimate``
        (not from the landmark fit's render: mean albedo, no light, a residual large everywhere
        and so a near-empty estimate). Returns the coefficients, the last mask used and the
        chunks' loss histories."""
        c = self.config
        params, opt_state = start, self.optimizer.init(start)
        histories = []
        for done in range(0, int(c.steps), int(c.robust_every)):
            if estimate and done >= int(c.robust_start):
                occlusion = self.estimate(params, inputs, proposed)
            weights = self.base_landmark_weights * hidden_landmark_weights(
                occlusion, inputs.target, float(c.hidden_landmark_weight)
            )
            params, opt_state, history = self._chunk(
                params,
                opt_state,
                self.jmodel,
                inputs.image,
                inputs.target,
                weights,
                inputs.identity,
                occlusion,
                self.dense_term(inputs, occlusion),
            )
            histories.append(history)
        return params, occlusion, histories

    def texture(
        self, params: Coeffs, inputs: FitInputs, occlusion: jax.Array, final: Rendering
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Step 5: per-vertex colours, visibility and vertices of the full model."""
        return self._texture(params, self.jfull, inputs.photo, occlusion, final.depth, final.mask)

    def fill(
        self,
        params: Coeffs,
        inputs: FitInputs,
        face_image: jax.Array,
        face_mask: jax.Array,
        occlusion: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """Step 6: the de-occlusion fill (region, colours) at the crop size."""
        size = (self.size, self.size)
        mouth = jax.image.resize(inputs.features[INNER_MOUTH], size, "linear") > 0.5
        return self._fill(params, self.jfull, face_image, face_mask, occlusion, mouth)

    # -- the fit --------------------------------------------------------------------------------
    def __call__(
        self,
        image: np.ndarray,
        landmarks: np.ndarray,
        occlusion: np.ndarray | None = None,
        predicted: np.ndarray | None = None,
        dense_landmarks: np.ndarray | None = None,
        start: dict[str, np.ndarray] | None = None,
    ) -> FitResult:
        """Fit an aligned crop ``image`` (S, S, 3) in [0, 1] with its 68 ``landmarks`` (pixels)
        and, when given, MediaPipe's 468 ``dense_landmarks`` (468, 2 or 3) pixels of the crop
        (x, y used), a second landmark term through the model's dense correspondences.

        ``occlusion`` (S, S), if given, marks occluder pixels (1) and replaces the estimate.
        ``predicted`` (S, S), an occluder probability from a mask network (N_mask), is left out of
        the photometric term from the first step; when ``config.robust``, the residual estimate
        then keeps the network's pixels whose residual confirms them (see
        ``predicted_confirm_ratio``) and adds what the network missed.
        ``start``: coefficient blocks (``CoeffLayout.split`` keys, the crop's Deng camera) to
        start from instead of the mean face, e.g. ``app.predictors.RegressorPredictor``'s; with
        ``landmark_steps`` and ``steps`` 0 the result is ``start`` itself (within the bounds)."""
        config, size = self.config, self.size
        inputs = self.prepare(image, landmarks, dense_landmarks)
        if start is not None:
            start = self.checked_start(start)
        start, landmark_losses = self.landmark_fit(inputs, start)
        occ, proposed = self.initial_occlusion(occlusion, predicted)
        estimate = occlusion is None and bool(config.robust)
        params, occ, histories = self.photometric_pass(start, inputs, occ, proposed, estimate)
        if estimate and bool(config.robust_restart):  # step 4, with pass 1's final estimate
            occ = self.estimate(params, inputs, proposed)
            params, occ, more = self.photometric_pass(start, inputs, occ, proposed, estimate)
            histories += more
        keys = histories[0] if histories else ()
        history = {k: np.concatenate([np.asarray(h[k]) for h in histories]) for k in keys}
        history["landmark_stage"] = np.asarray(landmark_losses)
        if estimate:
            occ = self.estimate(params, inputs, proposed)
        # The face alone (no photo behind it); its mask and depth do not depend on the background.
        final = self._estimate(
            params, self.jmodel, jnp.zeros_like(inputs.image), inputs.features, proposed
        )[0]
        if occlusion is not None:
            occ_full = (jnp.asarray(occlusion, jnp.float32) > 0.5).astype(jnp.float32)
            colors, visible, vertices = self.texture(params, inputs, occ_full, final)
        else:
            occ_full = jax.image.resize(occ, (size, size), "nearest")
            colors, visible, vertices = self.texture(params, inputs, occ, final)
        up = functools.partial(jax.image.resize, method="linear")
        face_image, face_mask = up(final.image, (size, size, 3)), up(final.mask, (size, size))
        fill_region, fill = self.fill(params, inputs, face_image, face_mask, occ_full)
        dense_fitted = None
        if inputs.dense_landmarks is not None:
            dense_fitted = np.asarray(
                self._project_dense(self.jmodel, params, self.dense_points()[0])
            )
        return FitResult(
            coeffs={k: np.asarray(v) for k, v in params.items()},
            vertices=np.asarray(vertices),
            occlusion=np.asarray(occ_full),
            rendered=np.asarray(face_image),
            face_mask=np.asarray(face_mask),
            landmarks=np.asarray(final.landmarks) / (self.render_size / size),
            vertex_colors=np.asarray(colors),
            vertex_visible=np.asarray(visible),
            history=history,
            fill_region=np.asarray(fill_region),
            fill=np.asarray(fill),
            dense_landmarks=dense_fitted,
        )


def fit_image(
    model: MorphableModel,
    image: np.ndarray,
    landmarks: np.ndarray,
    config: ml_collections.ConfigDict,
    occlusion: np.ndarray | None = None,
    full_model: MorphableModel | None = None,
) -> FitResult:
    """One-off ``Fitter(model, config, full_model)(image, landmarks, occlusion)``."""
    return Fitter(model, config, full_model)(image, landmarks, occlusion)
