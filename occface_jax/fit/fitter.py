"""Per-image fitting of the morphable model (analysis by synthesis), robust to occluders.

Works in Deng et al.'s aligned crop (224 x 224, perspective camera, see ``render.camera``); the
steps of :meth:`Fitter.__call__`:

1. Landmark stage: pose (angles, translation) plus identity and expression from the 68 landmarks
   alone (``objective.landmark_stage_loss``), on the landmark vertices only, cheap. With
   ``march_jaw`` the model's jaw landmarks follow the face's outline under the current pose
   (``morphable.contour``), as a detector's do, here and in the photometric stage.
2. Photometric pass: ``objective.fit_objective`` (Eq. 15: photometric with attention, landmarks,
   prior, and with ``use_identity`` the identity feature term), in chunks of ``robust_every``
   Adam steps (one ``lax.scan`` each), on every coefficient block but those of
   ``photometric_frozen`` (default id and exp: the shape stays the landmark stage's); the blocks of
   ``photometric_detached`` are moved by the landmark terms and the prior alone.
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
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

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
from occface_jax.morphable.correspondence import load_correspondence, load_ibug68
from occface_jax.morphable.rendering import project_dense, render
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


def with_landmark_vertices(model: MorphableModel, choice: str) -> MorphableModel:
    """``model`` whose inner 68 landmarks (17-67) are the iBUG-68 vertices of ``choice``: "ibug"
    (the package's derived file for the model; the model's own when it has none), "model" (its
    own ``landmarks68``) or the path of a file ``tools/fit_ibug68.py`` wrote. The jaw (0-16) stays
    the model's: the fit marches it along the outline."""
    if choice == "model":
        return model
    ids = load_ibug68(model, None if choice == "ibug" else choice)
    if ids is None:
        return model
    merged = np.concatenate([np.asarray(model.landmarks68)[:17], ids[17:]]).astype(np.int32)
    return dataclasses.replace(model, landmarks68=merged)


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


def coefficient_blocks(
    config: ml_collections.ConfigDict, key: str, layout: CoeffLayout
) -> frozenset[str]:
    """The coefficient blocks named in ``config[key]`` (comma-separated); OccfaceError (one line)
    for a name that is not a block of ``layout``."""
    names = frozenset(k.strip() for k in str(config.get(key, "")).split(",") if k.strip())
    known = [name for name, _ in layout.blocks]
    unknown = sorted(names - set(known))
    if unknown:
        raise OccfaceError(
            f"{key}: {', '.join(unknown)} not a coefficient block (the blocks: {', '.join(known)})"
        )
    return names


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


@dataclasses.dataclass(frozen=True)
class FitRequest:
    """One face for :meth:`Fitter.fit_batch`, the arguments of :meth:`Fitter.__call__`: the
    aligned crop ``image`` (S, S, 3) in [0, 1], its 68 ``landmarks`` (crop pixels), and when
    given an ``occlusion`` mask (S, S), a network's ``predicted`` occluder (S, S), MediaPipe's
    ``dense_landmarks`` (468, 2 or 3) crop pixels and ``start`` coefficient blocks."""

    image: np.ndarray
    landmarks: np.ndarray
    occlusion: np.ndarray | None = None
    predicted: np.ndarray | None = None
    dense_landmarks: np.ndarray | None = None
    start: dict[str, np.ndarray] | None = None


class FaceBatch(NamedTuple):
    """B prepared faces on a leading axis (what the batched pieces map over): photo (B, S, S, 3);
    image (B, R, R, 3); landmarks (B, 68, 2) at S; target (B, 68, 2) at R; features (B, 4, R, R);
    embedding (B, 128) the photos' identity descriptors or None; dense_landmarks (B, 468, 2) at S,
    dense_target (B, 468, 2) at R and dense_on (B,) 1 or 0 (a face without dense points in a
    batch with some: its term weighs 0), or all three None; proposed (B, R, R) a network's
    occluder to confirm (0 for a face without one) or None."""

    photo: jax.Array
    image: jax.Array
    landmarks: jax.Array
    target: jax.Array
    features: jax.Array
    embedding: jax.Array | None
    dense_landmarks: jax.Array | None
    dense_target: jax.Array | None
    dense_on: jax.Array | None
    proposed: jax.Array | None


class Shared(NamedTuple):
    """What every face of a batch shares (replicated over the mesh): the fitted and the full
    model's arrays, the identity network's state (or None) and the dense correspondences
    (``SurfacePoints``, (468,) weights) or None."""

    model: MorphableModel
    full: MorphableModel
    identity_state: Any
    dense: tuple[Any, jax.Array] | None


CheckFn = Callable[[], None]


def batch_devices(batch_size: int, devices: Sequence[jax.Device]) -> int:
    """How many of ``devices`` a batch of ``batch_size`` faces is split over: the most that divide
    it evenly (1: no mesh)."""
    return max(d for d in range(1, min(batch_size, len(devices)) + 1) if batch_size % d == 0)


# (B, R, R) occlusions and (B, P, 2) points -> (B, P) weight factors (``hidden_landmark_weights``)
_hidden_weights = jax.vmap(hidden_landmark_weights, (0, 0, None))


def _select(flags: np.ndarray, new: Any, old: Any) -> Any:
    """Per face (leading axis): ``new`` where ``flags``, else ``old`` (pytrees of equal shape)."""
    if flags.all():
        return new
    if not flags.any():
        return old

    def pick(a: jax.Array, b: jax.Array) -> jax.Array:
        mask = jnp.asarray(flags).reshape(flags.shape + (1,) * (a.ndim - 1))
        return jnp.where(mask, a, b)

    return jax.tree.map(pick, new, old)


class Fitter:
    """Fits one morphable model under one config; the jitted steps compile once and are reused
    across images (``occface reconstruct`` keeps one Fitter for a whole batch).

    ``model`` is what is rendered and fitted (e.g. the face region); ``full_model`` (same
    coefficients, more vertices, e.g. the whole head) is what the output mesh and texture use.
    Photometric fitting runs at ``config.render_size`` (the crop and landmarks are rescaled and
    the camera scaled with them, so the geometry is the same as at 224).

    Faces are fitted in batches (:meth:`fit_batch`; :meth:`__call__` is a batch of one): each
    jitted piece takes the faces on a leading axis, the renderer batched natively (a ``vmap``
    would turn the rasterizer's ``cond`` into a select), the rest vmapped, Adam per face. A batch
    of B faces on several ``devices`` is split over a ``('data',)`` mesh of the most devices that
    divide B (``shard_map``: each device fits its faces, nothing is exchanged). Faces do not
    interact, so a face's result does not depend on its batch.
    """

    def __init__(
        self,
        model: MorphableModel,
        config: ml_collections.ConfigDict,
        full_model: MorphableModel | None = None,
        devices: Sequence[jax.Device] | None = None,
    ) -> None:
        self.config = config
        self.full_model = full_model or model
        model = with_landmark_vertices(model, str(config.get("landmark_vertices", "model")))
        self.model = model
        self.devices = list(devices) if devices is not None else jax.devices()
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
        self.base_landmark_weights = jnp.asarray(
            landmark_weights(config.jaw_landmark_weight, config.get("eye_landmark_weight", 1.0))
        )
        self.optimizer = optax.adam(float(config.lr))
        self.photometric_frozen = coefficient_blocks(config, "photometric_frozen", self.layout)
        self.landmark_prior_scale = float(config.get("landmark_prior_scale", 10.0))
        if self.landmark_prior_scale <= 0:
            raise OccfaceError(
                f"landmark_prior_scale must be > 0 (got {self.landmark_prior_scale}): the "
                "landmark stage's identity and expression need a prior"
            )
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
            detached=coefficient_blocks(config, "photometric_detached", self.layout),
        )
        self._dense_points = None  # the model's 468 correspondences, loaded on first use
        # every batch carries the dense term's arrays (zeros, weighing 0, for a face without dense
        # points), so that faces with and without them share one compiled fit (set by a caller
        # that fits photos of both kinds, e.g. ``occface reconstruct`` when the face mesh can fail)
        self.dense_slot = False
        self._compiled: dict[tuple[str, int], Callable[..., Any]] = {}
        margin = float(config.feature_margin) * self.render_size / self.size
        self._features = jax.jit(
            functools.partial(feature_masks, size=self.render_size, margin=margin)
        )

    # -- jitted pieces: (shared, faces on a leading axis) -> per-face outputs --------------------
    def _piece(self, name: str, devices: int) -> Callable[..., Any]:
        """The jitted piece ``_<name>_impl``, split over a ``('data',)`` mesh of ``devices``
        (``shard_map``: shared arguments replicated, per-face ones and outputs on the batch axis);
        compiled once per (piece, device count, shapes)."""
        key = (name, devices)
        if key not in self._compiled:
            impl = getattr(self, f"_{name}_impl")
            if devices > 1:  # no collectives: each device fits its own faces
                impl = jax.shard_map(
                    impl,
                    mesh=self.mesh(devices),
                    in_specs=(P(), P("data")),
                    out_specs=P("data"),
                    check_vma=False,  # (Adam's fresh zero state inside would be 'invariant')
                )
            self._compiled[key] = jax.jit(impl)
        return self._compiled[key]

    def mesh(self, devices: int) -> Mesh:
        """The ``('data',)`` mesh of the first ``devices`` devices."""
        return Mesh(np.asarray(self.devices[:devices]), ("data",))

    def _dense(self, shared: Shared, faces: FaceBatch, occlusion: jax.Array | None):
        """The dense term for the batch (None without dense points): targets at S for the landmark
        stage (``occlusion`` None), else at R with points under ``occlusion`` down-weighted."""
        if shared.dense is None or faces.dense_target is None:
            return None
        points, weights = shared.dense
        weights = weights * faces.dense_on[:, None]
        floor = jnp.float32(self.config.dense_facing_weight)
        if occlusion is None:
            return DenseLandmarks(points, faces.dense_landmarks, weights, floor)
        factor = _hidden_weights(
            occlusion, faces.dense_target, float(self.config.hidden_landmark_weight)
        )
        return DenseLandmarks(points, faces.dense_target, weights * factor, floor)

    def _landmark_impl(self, shared: Shared, batched: tuple[Coeffs, FaceBatch]):
        """Step 1 per face (vmapped ``landmark_stage``): (coefficients, loss per step (B, steps))."""
        starts, faces = batched
        every = jnp.ones(faces.landmarks.shape[:2], jnp.float32)
        return self._landmark_fit(shared, starts, faces, every, self._dense(shared, faces, None))

    def _relandmark_impl(self, shared: Shared, batched: tuple[Coeffs, FaceBatch, jax.Array]):
        """Step 1 again from ``starts`` under the ``occlusion`` (B, R, R): the 68 and the dense
        points under it weigh ``restart_landmark_hidden_weight`` of a visible one."""
        starts, faces, occlusion = batched
        weight = float(self.config.restart_landmark_hidden_weight)
        dense = self._dense(shared, faces, None)
        if dense is not None:
            factor = _hidden_weights(occlusion, faces.dense_target, weight)
            dense = dense._replace(weights=dense.weights * factor)
        return self._landmark_fit(shared, starts, faces, _hidden_weights(occlusion, faces.target, weight), dense)  # fmt: skip

    def _landmark_fit(
        self,
        shared: Shared,
        starts: Coeffs,
        faces: FaceBatch,
        factor: jax.Array,
        dense: DenseLandmarks | None,
    ):
        """``landmark_stage`` per face with the 68 points' weights times ``factor`` (B, 68)."""
        c, w = self.config, self.weights

        def one(start: Coeffs, landmarks: jax.Array, factor: jax.Array, dense: DenseLandmarks | None):  # fmt: skip
            return landmark_stage(
                shared.model,
                start,
                landmarks,
                self.base_landmark_weights * factor,
                jnp.array([w.w_id, w.w_exp]) * self.landmark_prior_scale,
                int(c.landmark_steps),
                float(c.landmark_lr),
                self.model.exp_kind,
                self.camera,
                self.jaw,
                dense,
                jnp.float32(w.dense / w.land),
            )

        axes = None if dense is None else DenseLandmarks(None, 0, 0, None)
        return jax.vmap(one, (0, 0, 0, axes))(starts, faces.landmarks, factor, dense)

    def _chunk_impl(self, shared: Shared, batched: tuple[Coeffs, Any, FaceBatch, jax.Array]):
        """``robust_every`` Adam steps (per face) of the objective under a fixed ``occlusion``
        map (B, R, R); landmarks under it down-weighted. Returns the coefficients, the optimizer
        state and each term per step (B, steps)."""
        params, opt_state, faces, occlusion = batched
        lm_weights = self.base_landmark_weights * _hidden_weights(
            occlusion, faces.target, float(self.config.hidden_landmark_weight)
        )
        dense = self._dense(shared, faces, occlusion)
        identity = None
        if self.identity is not None:
            identity = (shared.identity_state, faces.embedding)

        frozen = self.photometric_frozen

        def loss(p: Coeffs):
            p = {k: jax.lax.stop_gradient(v) if k in frozen else v for k, v in p.items()}
            totals, terms = self._objective(
                p, shared.model, faces.image, faces.target, lm_weights, occlusion, identity,
                dense=dense,
            )  # fmt: skip
            return jnp.sum(totals), dict(terms, total=totals)  # faces are independent

        def step(carry, _):
            p, state = carry
            (_, terms), grads = jax.value_and_grad(loss, has_aux=True)(p)
            updates, state = jax.vmap(self.optimizer.update)(grads, state, p)
            p = project_constraints(optax.apply_updates(p, updates), self.model.exp_kind)
            return (p, state), terms

        length = int(self.config.robust_every)
        (params, opt_state), history = jax.lax.scan(step, (params, opt_state), None, length=length)
        return params, opt_state, jax.tree.map(lambda h: h.T, history)

    def _estimate_impl(self, shared: Shared, batched: tuple[Coeffs, FaceBatch]) -> jax.Array:
        """The occlusion (B, R, R) estimated from the residual of the current render (at
        ``render_size``), with ``proposed`` pixels (the mask network's) confirmed by a lower
        residual."""
        params, faces = batched
        c = self.config
        r = self.renderer(shared.model, params, faces.image)

        def one(image, rendered, mask, features, proposed):
            return estimate_occlusion(
                image,
                rendered,
                mask,
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

        return jax.vmap(one)(faces.image, r.image, r.mask, faces.features, faces.proposed)

    def _final_impl(self, shared: Shared, batched: tuple[Coeffs, FaceBatch]):
        """The face alone (no photo behind it: its mask and depth do not depend on the
        background) at R, its image and mask at S, and the fitted dense points (B, 468, 2) at S
        (None without dense points)."""
        params, faces = batched
        size = self.size
        final = self.renderer(shared.model, params, jnp.zeros_like(faces.image))
        up = jax.vmap(functools.partial(jax.image.resize, method="linear"), (0, None))
        face_image, face_mask = up(final.image, (size, size, 3)), up(final.mask, (size, size))
        dense = None
        if shared.dense is not None and faces.dense_landmarks is not None:
            dense = project_dense(shared.model, params, self.camera, shared.dense[0])[0]
        return final, face_image, face_mask, dense

    def _texture_impl(self, shared: Shared, batched):
        """Step 5 per face: per-vertex colours, visibility and vertices of the full model."""
        params, photo, occlusion, depth, coverage = batched

        def one(params, photo, occlusion, depth, coverage):
            return vertex_texture(
                shared.full,
                params,
                self.camera,
                photo,
                occlusion,
                depth,
                coverage,
                self.renderer.ambient,
                bool(self.config.texture_from_photo),
            )

        return jax.vmap(one)(params, photo, occlusion, depth, coverage)

    def _fill_impl(self, shared: Shared, batched):
        """Step 6: the de-occlusion fill (region, colours) at the crop size, per face."""
        params, face_image, face_mask, occlusion, features = batched
        size = (self.size, self.size)
        head = render(
            shared.full,
            params,
            self.camera,
            self.size,
            ambient=self.renderer.ambient,
            adjacency=self.full_adjacency,
        )

        def one(face_image, face_mask, head_image, head_mask, occlusion, features):
            mouth = jax.image.resize(features[INNER_MOUTH], size, "linear") > 0.5
            return deocclusion_fill(face_image, face_mask, head_image, head_mask, occlusion, mouth)

        return jax.vmap(one)(face_image, face_mask, head.image, head.mask, occlusion, features)

    # -- the steps of a fit ---------------------------------------------------------------------
    def dense_points(self):
        """The fitted model's ``SurfacePoints`` for MediaPipe's 468 (loaded once)."""
        if self._dense_points is None:
            corr = load_correspondence(self.model)
            self._dense_points = (corr.surface_points(self.model), jnp.asarray(corr.weight))
        return self._dense_points

    def dense_term(self, inputs: FitInputs, occlusion: jax.Array | None) -> DenseLandmarks | None:
        """One face's dense term: at the crop size S for the landmark stage (``occlusion``
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

    def stack(self, prepared: list[FitInputs], proposed: list[jax.Array | None]) -> FaceBatch:
        """Prepared faces (and their networks' proposals) on a leading axis; a face without
        dense points (or proposal) in a batch with some gets zeros, its dense term weighing 0
        (with ``dense_slot``, in every batch)."""

        def stacked(values: list[Any]) -> jax.Array:
            return jnp.stack([jnp.asarray(v) for v in values])

        def optional(values: list[Any], like: tuple[int, ...], always: bool = False):
            if all(v is None for v in values) and not always:
                return None
            return stacked([jnp.zeros(like, jnp.float32) if v is None else v for v in values])

        embedding = None
        if self.identity is not None:
            embedding = stacked([p.identity[1] for p in prepared])
        dense_on = None
        if self.dense_slot or any(p.dense_landmarks is not None for p in prepared):
            dense_on = jnp.asarray([p.dense_landmarks is not None for p in prepared], jnp.float32)
        small = (self.render_size, self.render_size)
        return FaceBatch(
            photo=stacked([p.photo for p in prepared]),
            image=stacked([p.image for p in prepared]),
            landmarks=stacked([p.landmarks for p in prepared]),
            target=stacked([p.target for p in prepared]),
            features=stacked([p.features for p in prepared]),
            embedding=embedding,
            dense_landmarks=optional(
                [p.dense_landmarks for p in prepared], (468, 2), self.dense_slot
            ),
            dense_target=optional([p.dense_target for p in prepared], (468, 2), self.dense_slot),
            dense_on=dense_on,
            proposed=optional(proposed, small),
        )

    def photometric_pass(
        self,
        devices: int,
        shared: Shared,
        start: Coeffs,
        faces: FaceBatch,
        occlusion: jax.Array,
        estimate: np.ndarray,
        check: CheckFn | None = None,
    ) -> tuple[Coeffs, jax.Array, list[dict[str, jax.Array]]]:
        """Step 2 for a batch: ``steps`` photometric steps from ``start`` in chunks of
        ``robust_every``, the occlusion of the faces flagged in ``estimate`` (B,) re-estimated
        before each chunk from step ``robust_start`` on (not from the landmark fit's render: mean
        albedo, no light, a residual large everywhere and so a near-empty estimate); ``check``
        runs before each chunk (it raises to stop the fit). Returns the coefficients, the last
        masks used and the chunks' loss histories (each term (B, robust_every))."""
        c = self.config
        params, opt_state = start, jax.vmap(self.optimizer.init)(start)
        histories = []
        for done in range(0, int(c.steps), int(c.robust_every)):
            if check is not None:
                check()
            if estimate.any() and done >= int(c.robust_start):
                new = self._piece("estimate", devices)(shared, (params, faces))
                occlusion = _select(estimate, new, occlusion)
            params, opt_state, history = self._piece("chunk", devices)(
                shared, (params, opt_state, faces, occlusion)
            )
            histories.append(history)
        return params, occlusion, histories

    # -- the fit --------------------------------------------------------------------------------
    def __call__(
        self,
        image: np.ndarray,
        landmarks: np.ndarray,
        occlusion: np.ndarray | None = None,
        predicted: np.ndarray | None = None,
        dense_landmarks: np.ndarray | None = None,
        start: dict[str, np.ndarray] | None = None,
        check: CheckFn | None = None,
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
        ``landmark_steps`` and ``steps`` 0 the result is ``start`` itself (within the bounds).
        ``check`` runs between the fit's chunks; whatever it raises stops the fit.
        A batch of one of :meth:`fit_batch`."""
        request = FitRequest(image, landmarks, occlusion, predicted, dense_landmarks, start)
        return self.fit_batch([request], check=check)[0]

    def fit_batch(
        self,
        requests: Sequence[FitRequest],
        batch_size: int | None = None,
        check: CheckFn | None = None,
    ) -> list[FitResult]:
        """Fit the faces of ``requests`` together (each as :meth:`__call__` would, to float
        tolerance); one result per request, in order. The batch is padded to ``batch_size``
        faces (default: as many as requests) with copies of the first, so one compiled program
        serves every batch of that size, and split over ``batch_devices(batch_size)`` devices.
        ``check`` runs between stages and chunks; whatever it raises stops the fit."""
        n = len(requests)
        if n == 0:
            return []
        size = n if batch_size is None else int(batch_size)
        if size < n:
            raise ValueError(f"{n} faces do not fit in a batch of {size}")
        config = self.config
        rows = list(requests) + [requests[0]] * (size - n)
        prepared = [self.prepare(r.image, r.landmarks, r.dense_landmarks) for r in rows]
        starts = [
            initial_coeffs(self.layout) if r.start is None else self.checked_start(r.start)
            for r in rows
        ]
        initial = [self.initial_occlusion(r.occlusion, r.predicted) for r in rows]
        faces = self.stack(prepared, [proposed for _, proposed in initial])
        given = np.array([r.occlusion is not None for r in rows])
        estimate = ~given & bool(config.robust)
        dense = self.dense_points() if faces.dense_landmarks is not None else None
        shared = Shared(self.jmodel, self.jfull, self.identity_state, dense)
        devices = batch_devices(size, self.devices)
        batched: Any = (
            jax.tree.map(lambda *blocks: jnp.stack(blocks), *starts),
            faces,
            jnp.stack([occ for occ, _ in initial]),
        )
        if devices > 1:  # per-face arrays split over the mesh's batch axis
            batched = jax.device_put(batched, NamedSharding(self.mesh(devices), P("data")))
        first, faces, occ = batched
        if check is not None:
            check()
        start, landmark_losses = self._piece("landmark", devices)(shared, (first, faces))
        params, occ, histories = self.photometric_pass(
            devices, shared, start, faces, occ, estimate, check
        )
        restarted = estimate & bool(config.robust_restart)
        if restarted.any():  # step 4, with pass 1's final estimate
            occ = _select(restarted, self._piece("estimate", devices)(shared, (params, faces)), occ)
            if bool(config.get("robust_restart_landmarks", False)):  # from the fit's own start
                again_start, _ = self._piece("relandmark", devices)(shared, (first, faces, occ))
                start = _select(restarted, again_start, start)
            again, occ_again, more = self.photometric_pass(
                devices, shared, start, faces, occ, estimate, check
            )
            params = _select(restarted, again, params)
            occ = _select(restarted, occ_again, occ)
        else:
            more = []
        if estimate.any():
            occ = _select(estimate, self._piece("estimate", devices)(shared, (params, faces)), occ)
        final, face_image, face_mask, dense_fitted = self._piece("final", devices)(
            shared, (params, faces)
        )
        full = (self.size, self.size)
        occ_full = jax.vmap(lambda o: jax.image.resize(o, full, "nearest"))(occ)
        if given.any():
            masks = jnp.stack(
                [jnp.zeros(full) if r.occlusion is None else r.occlusion for r in rows]
            )
            occ_full = _select(
                given, (masks.astype(jnp.float32) > 0.5).astype(jnp.float32), occ_full
            )
        texture = functools.partial(self._piece("texture", devices), shared)
        if given.all():  # a given mask textures at its own (crop) resolution, an estimate at R
            textured = texture((params, faces.photo, occ_full, final.depth, final.mask))
        else:
            textured = texture((params, faces.photo, occ, final.depth, final.mask))
            if given.any():
                at_full = texture((params, faces.photo, occ_full, final.depth, final.mask))
                textured = _select(given, at_full, textured)
        fill_region, fill = self._piece("fill", devices)(
            shared, (params, face_image, face_mask, occ_full, faces.features)
        )
        arrays = jax.device_get(
            {
                "coeffs": params,
                "textured": textured,
                "occ_full": occ_full,
                "face_image": face_image,
                "face_mask": face_mask,
                "landmarks": final.landmarks,
                "fill_region": fill_region,
                "fill": fill,
                "dense": dense_fitted,
                "landmark_stage": landmark_losses,
                "pass1": histories,
                "pass2": more,
            }
        )
        return [self._result(arrays, k, rows[k], bool(restarted[k])) for k in range(n)]

    def _result(self, arrays: dict[str, Any], k: int, request: FitRequest, restarted: bool):
        """Face ``k`` of a fitted batch (numpy arrays) as a ``FitResult``."""
        chunks = arrays["pass1"] + (arrays["pass2"] if restarted else [])
        keys = [key for key in (chunks[0] if chunks else ()) if key != "dense"]
        if request.dense_landmarks is not None and chunks and "dense" in chunks[0]:
            keys.append("dense")
        history = {key: np.concatenate([h[key][k] for h in chunks]) for key in keys}
        history["landmark_stage"] = arrays["landmark_stage"][k]
        colors, visible, vertices = (a[k] for a in arrays["textured"])
        dense = arrays["dense"]
        return FitResult(
            coeffs={key: v[k] for key, v in arrays["coeffs"].items()},
            vertices=vertices,
            occlusion=arrays["occ_full"][k],
            rendered=arrays["face_image"][k],
            face_mask=arrays["face_mask"][k],
            landmarks=arrays["landmarks"][k] / (self.render_size / self.size),
            vertex_colors=colors,
            vertex_visible=visible,
            history=history,
            fill_region=arrays["fill_region"][k],
            fill=arrays["fill"][k],
            dense_landmarks=None if request.dense_landmarks is None else dense[k],
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
