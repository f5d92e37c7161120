"""Per-image fitting of the morphable model (analysis by synthesis), robust to occluders.

Works in Deng et al.'s aligned crop (224 x 224, perspective camera, see ``render.camera``):

1. Landmark stage: pose (angles, translation) plus identity and expression from the 68 landmarks
   alone (landmark loss + coefficient prior), on the landmark vertices only — cheap. With
   ``march_jaw`` the model's jaw landmarks follow the face's outline under the current pose
   (``morphable.contour``), as a detector's do, here and in the photometric stage.
2. Photometric stage: every coefficient, with Eq. 15's photometric (attention Z: 1 on the rendered
   face, 0.1 elsewhere, 0 on occluders; each pixel's colour distance d through the kernel
   s log(1 + d / s), s = ``phot_robust_scale``, so what the mask misses pulls less), landmark and
   prior terms. Without a given occlusion mask the occluder is estimated EM-style: every
   ``robust_every`` steps, rendered-face pixels whose colour residual exceeds ``robust_ratio`` x
   the median residual (and ``robust_min_residual``) are marked occluded (never the eyes, brows
   or inner mouth), and so are those of the flagged pixels' colours (``robust_colour_share``)
   above ``predicted_confirm_ratio`` x the median; the mask is closed morphologically, and
   landmarks under it count ``hidden_landmark_weight`` (half) of a visible one. With
   ``robust_restart`` a second pass starts again from the landmark fit with the mask the first
   pass ended on, so the early, unmasked steps leave no trace. A mask predicted by the
   occlusion network (``predicted``) is masked out from the first step; from the first estimate
   on, the network proposes and the residual confirms: its pixels stay out where the residual
   exceeds ``predicted_confirm_ratio`` x the median (0: all of them stay out), and the residual
   test adds what the network missed.
3. Texture: visible face vertices take the photo's colour; occluded or unseen ones take the
   model's albedo under the fitted light, so the output texture carries no occluder.

Blendshape expression weights are kept in [0, 1] by projection after every step.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from occface_jax.losses import recon
from occface_jax.morphable import CoeffLayout, MorphableModel, contour, geometry
from occface_jax.morphable.rendering import render
from occface_jax.render import camera as cam
from occface_jax.render.antialias import mesh_adjacency
from occface_jax.render.sh import shade
from occface_jax.texture.atlas import sample_nearest

Coeffs = dict[str, jax.Array]


@dataclasses.dataclass
class FitResult:
    """What a fit produces, in the aligned crop's frame (pixels, x right, y down).

    coeffs: the coefficient blocks. vertices: (N, 3) mm of the full model, model frame.
    occlusion: (H, W) float, 1 = pixel judged occluded (given or estimated).
    rendered: (H, W, 3) render of the fitted face; face_mask: (H, W) its coverage.
    landmarks: (68, 2) projected model landmarks. vertex_colors: (N, 3) output texture in [0, 1].
    vertex_visible: (N,) bool, vertices whose colour came from the photo. history: loss per step.
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


def landmark_weights(jaw_weight: float) -> np.ndarray:
    """Deng et al.'s landmark weights with the jaw line (0-16) scaled by ``jaw_weight``."""
    w = recon.LANDMARK_WEIGHTS.copy()
    w[:17] *= jaw_weight
    return w


def project_landmarks(
    model: MorphableModel,
    coeffs: Coeffs,
    camera: cam.PerspectiveCamera,
    jaw: contour.JawContour | None = None,
) -> jax.Array:
    """(…, 68, 2) pixel positions of the model landmarks, computing only those 68 vertices (and,
    with ``jaw``, the jaw's candidate lines, the jaw landmarks following the outline)."""
    ids = jnp.asarray(model.landmarks68)
    if jaw is not None:
        ids = jnp.concatenate([ids, jnp.asarray(jaw.candidates).reshape(-1)])
    rows = (3 * ids[:, None] + jnp.arange(3)).reshape(-1)
    lm_model = dataclasses.replace(
        model,
        mean_shape=model.mean_shape[ids],
        id_basis=model.id_basis[rows],
        exp_basis=model.exp_basis[rows],
    )
    verts = geometry.shape(lm_model, coeffs["id"], coeffs["exp"])
    world = cam.rigid_transform(verts, coeffs["angles"], coeffs["translation"])
    pixels = cam.project_perspective(world, camera)
    if jaw is None:
        return pixels
    landmarks, lines = pixels[..., :68, :], pixels[..., 68:, :]
    lines = lines.reshape(lines.shape[:-2] + jaw.candidates.shape + (2,))
    rotation = cam.euler_to_rotation(coeffs["angles"])
    return contour.march_jaw(landmarks, lines, rotation, jaw.outward)


TEX_LIMIT = 3.0  # albedo coefficients are N(0, 1): keep them within 3 standard deviations


def _project_constraints(coeffs: Coeffs, exp_kind: str) -> Coeffs:
    """Blendshape weights into [0, 1]; albedo coefficients into [-3, 3] (their prior's 3 sigma)."""
    if "tex" in coeffs:
        coeffs = dict(coeffs, tex=jnp.clip(coeffs["tex"], -TEX_LIMIT, TEX_LIMIT))
    if exp_kind == "blendshape":
        coeffs = dict(coeffs, exp=jnp.clip(coeffs["exp"], 0.0, 1.0))
    return coeffs


def initial_coeffs(layout: CoeffLayout) -> Coeffs:
    """Mean face, frontal, at Deng et al.'s default distance; light zero (the renderer adds the
    ambient term)."""
    return layout.zeros()


@functools.partial(jax.jit, static_argnames=("steps", "lr", "exp_kind"))
def _landmark_stage(
    model: MorphableModel,
    coeffs: Coeffs,
    target: jax.Array,
    weights: jax.Array,
    prior_w: jax.Array,
    steps: int,
    lr: float,
    exp_kind: str,
    camera: Any,
    jaw: contour.JawContour | None,
) -> tuple[Coeffs, jax.Array]:
    free = ("id", "exp", "angles", "translation")
    params = {k: coeffs[k] for k in free}
    opt = optax.adam(lr)

    def loss_fn(p):
        full = dict(coeffs, **p)
        pred = project_landmarks(model, full, camera, jaw)
        land = recon.landmark_loss(target, pred, weights)
        prior = recon.coefficient_prior(
            p["id"], p["exp"], jnp.zeros(1), prior_w[0], prior_w[1], 0.0
        )
        return land + prior

    def step(carry, _):
        p, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, state = opt.update(grads, state, p)
        p = _project_constraints(optax.apply_updates(p, updates), exp_kind)
        return (p, state), loss

    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return dict(coeffs, **params), losses


def _max_filter(x: jax.Array, size: int) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (size, size), (1, 1), "SAME")


def _min_filter(x: jax.Array, size: int) -> jax.Array:
    return -_max_filter(-x, size)


def estimate_occlusion(
    image: jax.Array,
    rendered: jax.Array,
    face_mask: jax.Array,
    ratio: float,
    min_residual: float,
    protect: jax.Array | None = None,
    close: int = 5,
    proposed: jax.Array | None = None,
    confirm_ratio: float = 2.0,
    enclosed: jax.Array | None = None,
    ring: int = 3,
    ring_share: float = 0.5,
    colour_share: float = 0.0,
) -> jax.Array:
    """Occluded face pixels (H, W) in {0, 1}.

    A rendered-face pixel is an outlier when its colour residual exceeds
    ``max(min_residual, ratio x median residual over the face)``; pixels in ``protect`` (eyes, brows
    and inner mouth, which the smooth albedo cannot paint) are never outliers. Pixels in
    ``proposed`` (e.g. the mask network's occluder, {0, 1}) need less evidence: a residual above
    ``confirm_ratio x median`` confirms them, protected or not (sunglasses cover the eyes); the
    median is then taken over the face pixels not proposed (the skin), unless they are under a
    tenth of the face. A ``close`` x ``close`` closing (5 by default) fills the gaps between thin
    occluder parts (hair strands, spectacle rims); no opening, which would erase them. With
    ``colour_share`` > 0, pixels whose colour is mostly the outliers' (an
    :func:`occluder_colour_share` above ``colour_share``, the rest of the face as skin) need
    only ``confirm_ratio x median`` as well, once the outliers are 2% of the face: the parts of
    an occluder the albedo has half absorbed. Each of the
    ``enclosed`` features (K, H, W), e.g. the inner mouth, whose ``ring``-pixel band of surrounding
    skin is more than ``ring_share`` occluded is marked occluded whole: the residual cannot tell an
    occluder there, its surroundings can. (Not the eyes: spectacle frames surround visible eyes.)
    A band of fewer than ``4 x ring`` skin pixels (the feature at the image border or under the
    protected margin) decides nothing."""
    residual = jnp.linalg.norm(image - rendered, axis=-1)
    face = face_mask > 0.5
    median = jnp.nanmedian(jnp.where(face, residual, jnp.nan))
    if proposed is not None:  # the reference is the skin the network left (when enough is left)
        skin = face & (proposed <= 0.5)
        skin_median = jnp.nanmedian(jnp.where(skin, residual, jnp.nan))
        median = jnp.where(skin.sum() >= 0.1 * face.sum(), skin_median, median)
    threshold = jnp.maximum(ratio * median, min_residual)
    confirmed = residual > confirm_ratio * median  # enough for a proposed pixel
    unprotected = face & (protect < 0.5) if protect is not None else face  # the skin
    outlier = (residual > threshold) & unprotected
    if proposed is not None:
        outlier = outlier | ((proposed > 0.5) & confirmed)
    if colour_share > 0:  # the occluder's colours propose the pixels the residual test missed
        occluder = face & outlier
        share = occluder_colour_share(image, occluder, unprotected & ~outlier)
        enough = occluder.sum() >= 0.02 * face.sum()
        outlier = outlier | (enough & (share > colour_share) & confirmed)
    raw = jnp.where(face & outlier, 1.0, 0.0)
    closed = _min_filter(_max_filter(raw, close), close)
    if enclosed is not None and ring > 0:
        # A feature whose surrounding skin is mostly occluded is hidden too (food or a hand over
        # the lips covers the inner mouth).
        for feature in enclosed:
            around = (_max_filter(feature, 2 * ring + 1) > 0.5) & unprotected
            count = jnp.sum(around)
            share = jnp.sum(closed * around) / jnp.maximum(count, 1)
            hidden = (share > ring_share) & (count >= 4 * ring)
            closed = jnp.maximum(closed, jnp.where(hidden, feature, 0.0))
    return closed * face


def occluder_colour_share(
    image: jax.Array, occluder: jax.Array, skin: jax.Array, bins: int = 12
) -> jax.Array:
    """(H, W) in [0, 1]: how much of the colour density at each pixel's colour (``image`` RGB in
    [0, 1]) is the occluder's: h_o / (h_o + h_s), with h_o and h_s the colour histograms of the
    ``occluder`` and ``skin`` pixels ((H, W) bool) over ``bins``^3 RGB cells, each normalised to
    sum 1 and smoothed over the 3 x 3 x 3 neighbouring cells; 0 where neither has any density."""
    cell = jnp.clip((image * bins).astype(jnp.int32), 0, bins - 1)
    flat = ((cell[..., 0] * bins + cell[..., 1]) * bins + cell[..., 2]).reshape(-1)

    def density(pixels: jax.Array) -> jax.Array:
        counts = jnp.zeros(bins**3).at[flat].add(pixels.reshape(-1).astype(jnp.float32))
        cube = counts.reshape(bins, bins, bins)
        cube = jax.lax.reduce_window(cube, 0.0, jax.lax.add, (3, 3, 3), (1, 1, 1), "SAME")
        return cube.reshape(-1) / jnp.maximum(cube.sum(), 1e-6)

    h_occluder, h_skin = density(occluder), density(skin)
    share = h_occluder / jnp.maximum(h_occluder + h_skin, 1e-12)
    return share[flat].reshape(image.shape[:-1])


def feature_mask(landmarks: jax.Array, size: int, margin: float) -> jax.Array:
    """(size, size) 1 inside the eyes (landmarks 36-41, 42-47) and the inner mouth (60-67, teeth and
    tongue), grown by ``margin`` pixels, and within ``margin`` pixels of the brows (17-21, 22-26):
    regions an albedo model cannot explain. The union of :func:`feature_masks`."""
    return jnp.max(feature_masks(landmarks, size, margin), axis=0)


#: Row of :func:`feature_masks` holding the inner mouth.
INNER_MOUTH = 2


def feature_masks(landmarks: jax.Array, size: int, margin: float) -> jax.Array:
    """(4, size, size) float32 in {0, 1}: the image-left eye, the image-right eye, the inner mouth
    and the brows, as in :func:`feature_mask`, one map each."""
    ys, xs = jnp.mgrid[0:size, 0:size] + 0.5
    pix = jnp.stack([xs, ys], axis=-1)[..., None, :]  # (H, W, 1, 2)

    def segment_distance(a: jax.Array, b: jax.Array) -> jax.Array:  # (S, 2) each -> (H, W)
        ab = b - a
        t = jnp.clip(jnp.sum((pix - a) * ab, -1) / jnp.maximum(jnp.sum(ab * ab, -1), 1e-6), 0, 1)
        return jnp.min(jnp.linalg.norm(pix - (a + t[..., None] * ab), axis=-1), axis=-1)

    def polygon(points: jax.Array) -> jax.Array:
        closed_dist = segment_distance(points, jnp.roll(points, -1, axis=0))
        a, b = points, jnp.roll(points, -1, axis=0)
        cross = (b[:, 0] - a[:, 0]) * (pix[..., 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (
            pix[..., 0] - a[:, 0]
        )
        inside = jnp.all(cross >= 0, -1) | jnp.all(cross <= 0, -1)  # convex polygon
        return inside | (closed_dist < margin)

    brows = (segment_distance(landmarks[17:21], landmarks[18:22]) < margin) | (
        segment_distance(landmarks[22:26], landmarks[23:27]) < margin
    )
    parts = [polygon(landmarks[36:42]), polygon(landmarks[42:48]), polygon(landmarks[60:68]), brows]
    return jnp.stack(parts).astype(jnp.float32)


def deocclusion_fill(
    face_image: jax.Array,
    face_mask: jax.Array,
    head_image: jax.Array,
    head_mask: jax.Array,
    occlusion: jax.Array,
    mouth: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """What a de-occluded photo repaints, and with what: (region (H, W), colours (H, W, 3)).

    ``face_*`` is the render of the fitted face region, ``head_*`` of the full model (which has a
    mouth interior where the face region has an opening), ``occlusion`` the occluded face pixels
    and ``mouth`` (bool) the inner mouth. The region is the occlusion and, when the occlusion
    covers more than half of the inner mouth's face pixels, the whole inner mouth, wherever
    either render covers; the colours are the face render's where it covers, else the head's."""
    face = face_mask > 0.5
    mouth_face = jnp.sum(mouth * face)
    hidden = jnp.sum(occlusion * mouth * face) > 0.5 * jnp.maximum(mouth_face, 1.0)
    region = jnp.maximum(occlusion, jnp.where(hidden, mouth, 0.0))
    fill = jnp.where(face[..., None], face_image, head_image)
    return region * jnp.maximum(face_mask, head_mask), fill


def hidden_landmark_weights(
    occlusion: jax.Array, landmarks: jax.Array, hidden_weight: float
) -> jax.Array:
    """(68,) landmark weight factors: 1 where a landmark's pixel (x right, y down, pixels of
    ``occlusion``) is visible, ``hidden_weight`` where the occlusion mask covers it (a detector's
    guess under an occluder is worse than its visible points, yet far from worthless:
    ``experiments/results/occluded_landmarks.md``)."""
    return 1.0 - (1.0 - hidden_weight) * sample_nearest(occlusion, landmarks)


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
        self.render_size = int(config.get("render_size", self.size))
        self.camera = cam.deng_camera(self.size)
        self.render_camera = cam.deng_camera(self.render_size)
        self.layout = CoeffLayout.for_model(model, light=config.light)
        self.adjacency = mesh_adjacency(model.triangles)
        self.jaw = contour.for_model(model) if config.get("march_jaw", True) else None
        self.full_adjacency = mesh_adjacency(self.full_model.triangles)
        self.jmodel = model.to_jax()
        self.jfull = self.full_model.to_jax()
        w = config.weights
        self.weights = {k: float(w[k]) for k in ("phot", "land", "regu", "w_id", "w_exp", "w_tex")}
        self.base_landmark_weights = jnp.asarray(landmark_weights(config.jaw_landmark_weight))
        self.ambient = float(config.ambient)
        self.phot_robust_scale = float(config.phot_robust_scale)
        self.optimizer = optax.adam(float(config.lr))
        self._chunk = jax.jit(self._chunk_impl)
        self._estimate = jax.jit(self._estimate_impl)
        self._finish = jax.jit(self._finish_impl)
        self._fill = jax.jit(self._fill_impl)
        margin = float(config.feature_margin) * self.render_size / self.size
        self._features = jax.jit(
            functools.partial(feature_masks, size=self.render_size, margin=margin)
        )

    # -- pieces, each jitted once -------------------------------------------------------------
    def _render(self, model: MorphableModel, params: Coeffs, image: jax.Array | None):
        return render(
            model,
            params,
            self.render_camera,
            ambient=self.ambient,
            background=image,
            adjacency=self.adjacency,
            jaw=self.jaw,
        )

    def _loss(self, params, model, image, target, lm_weights, occlusion):
        w = self.weights
        r = self._render(model, params, image)
        attention = recon.photometric_attention(jax.lax.stop_gradient(r.mask), occlusion)
        terms = {
            "phot": recon.photometric_loss(
                image, r.image, attention, robust_scale=self.phot_robust_scale
            ),
            "land": recon.landmark_loss(target, r.landmarks, lm_weights),
            "regu": recon.coefficient_prior(
                params["id"], params["exp"], params["tex"], w["w_id"], w["w_exp"], w["w_tex"]
            ),
        }
        return sum(w[name] * value for name, value in terms.items()), terms

    def _chunk_impl(self, params, opt_state, model, image, target, lm_weights, occlusion):
        def step(carry, _):
            p, state = carry
            (loss, terms), grads = jax.value_and_grad(self._loss, has_aux=True)(
                p, model, image, target, lm_weights, occlusion
            )
            updates, state = self.optimizer.update(grads, state, p)
            p = _project_constraints(optax.apply_updates(p, updates), self.model.exp_kind)
            return (p, state), dict(terms, total=loss)

        length = int(self.config.robust_every)
        (params, opt_state), history = jax.lax.scan(step, (params, opt_state), None, length=length)
        return params, opt_state, history

    def _estimate_impl(self, params, model, image, features, proposed):
        """The current render (at ``render_size``) and the occlusion estimated from its residual,
        with ``proposed`` pixels (the mask network's) confirmed by a lower residual."""
        r = self._render(model, params, image)
        occlusion = estimate_occlusion(
            image,
            r.image,
            r.mask,
            float(self.config.robust_ratio),
            float(self.config.robust_min_residual),
            jnp.max(features, axis=0),
            int(self.config.robust_close),
            proposed,
            float(self.config.predicted_confirm_ratio),
            features[INNER_MOUTH : INNER_MOUTH + 1],
            colour_share=float(self.config.get("robust_colour_share", 0.0)),
        )
        return r, occlusion

    def _finish_impl(self, params, full, photo, occlusion, depth, coverage):
        return vertex_texture(
            full,
            params,
            self.camera,
            photo,
            occlusion,
            depth,
            coverage,
            self.ambient,
            bool(self.config.texture_from_photo),
        )

    def _fill_impl(self, params, full, face_image, face_mask, occlusion, mouth):
        head = render(
            full,
            params,
            self.camera,
            self.size,
            ambient=self.ambient,
            adjacency=self.full_adjacency,
        )
        return deocclusion_fill(face_image, face_mask, head.image, head.mask, occlusion, mouth)

    # -- the fit --------------------------------------------------------------------------------
    def __call__(
        self,
        image: np.ndarray,
        landmarks: np.ndarray,
        occlusion: np.ndarray | None = None,
        predicted: np.ndarray | None = None,
    ) -> FitResult:
        """Fit an aligned crop ``image`` (S, S, 3) in [0, 1] with its 68 ``landmarks`` (pixels).

        ``occlusion`` (S, S), if given, marks occluder pixels (1) and replaces the estimate.
        ``predicted`` (S, S), an occluder probability from a mask network (N_mask), is left out of
        the photometric term from the first step; when ``config.robust``, the residual estimate
        then keeps the network's pixels whose residual confirms them (see
        ``predicted_confirm_ratio``) and adds what the network missed."""
        config, size, small = self.config, self.size, self.render_size
        if image.shape[:2] != (size, size):
            raise ValueError(f"the fit needs a {size}x{size} aligned crop, got {image.shape[:2]}")
        factor = small / size
        photo = jnp.asarray(image, jnp.float32)
        img = jax.image.resize(photo, (small, small, 3), "linear", antialias=True)
        target_full = jnp.asarray(landmarks, jnp.float32)
        target = target_full * factor
        base_w = self.base_landmark_weights
        hidden_w = float(config.get("hidden_landmark_weight", 0.0))
        w = self.weights

        coeffs, lm_losses = _landmark_stage(
            self.jmodel,
            initial_coeffs(self.layout),
            target_full,
            base_w,
            jnp.array([w["w_id"], w["w_exp"]]) * 10.0,
            int(config.landmark_steps),
            float(config.landmark_lr),
            self.model.exp_kind,
            self.camera,
            self.jaw,
        )
        params, opt_state = coeffs, self.optimizer.init(coeffs)
        given = occlusion is not None
        if given:
            occ = jax.image.resize(jnp.asarray(occlusion, jnp.float32), (small, small), "linear")
            occ = (occ > 0.5).astype(jnp.float32)
        elif predicted is not None:
            occ = jax.image.resize(jnp.asarray(predicted, jnp.float32), (small, small), "linear")
            occ = (occ > float(config.predicted_threshold)).astype(jnp.float32)
        else:
            occ = jnp.zeros((small, small), jnp.float32)
        # The network's pixels: out until the residual estimate confirms or frees them.
        proposed = occ if predicted is not None and not given else None
        protect = self._features(target)
        estimate = not given and bool(config.robust)
        passes = 2 if estimate and bool(config.get("robust_restart", False)) else 1
        histories = []
        for pass_index in range(passes):
            if pass_index:  # start again from the landmark fit, with pass 1's final estimate
                occ = self._estimate(params, self.jmodel, img, protect, proposed)[1]
                params, opt_state = coeffs, self.optimizer.init(coeffs)
            done = 0
            while done < int(config.steps):
                # Not from the landmark fit's render (mean albedo, no light: its residual is
                # large everywhere, so the estimate would be near empty): after robust_start.
                if estimate and done >= int(config.robust_start):
                    occ = self._estimate(params, self.jmodel, img, protect, proposed)[1]
                lm_w = base_w * hidden_landmark_weights(occ, target, hidden_w)
                params, opt_state, hist = self._chunk(
                    params, opt_state, self.jmodel, img, target, lm_w, occ
                )
                histories.append(hist)
                done += int(config.robust_every)
        history = {k: np.concatenate([np.asarray(h[k]) for h in histories]) for k in histories[0]}
        history["landmark_stage"] = np.asarray(lm_losses)
        if estimate:
            occ = self._estimate(params, self.jmodel, img, protect, proposed)[1]
        # The face alone (no photo behind it); its mask and depth do not depend on the background.
        final = self._estimate(params, self.jmodel, jnp.zeros_like(img), protect, proposed)[0]
        if given:
            occ_full = (jnp.asarray(occlusion, jnp.float32) > 0.5).astype(jnp.float32)
        else:
            occ_full = jax.image.resize(occ, (size, size), "nearest")
        colors, visible, vertices = self._finish(
            params, self.jfull, photo, occ_full if given else occ, final.depth, final.mask
        )
        up = functools.partial(jax.image.resize, method="linear")
        face_image, face_mask = up(final.image, (size, size, 3)), up(final.mask, (size, size))
        mouth = up(protect[INNER_MOUTH], (size, size)) > 0.5
        fill_region, fill = self._fill(params, self.jfull, face_image, face_mask, occ_full, mouth)
        return FitResult(
            coeffs={k: np.asarray(v) for k, v in params.items()},
            vertices=np.asarray(vertices),
            occlusion=np.asarray(occ_full),
            rendered=np.asarray(face_image),
            face_mask=np.asarray(face_mask),
            landmarks=np.asarray(final.landmarks) / factor,
            vertex_colors=np.asarray(colors),
            vertex_visible=np.asarray(visible),
            history=history,
            fill_region=np.asarray(fill_region),
            fill=np.asarray(fill),
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


def vertex_texture(
    model: MorphableModel,
    coeffs: Coeffs,
    camera: cam.PerspectiveCamera,
    image: jax.Array,
    occlusion: jax.Array,
    depth: jax.Array,
    coverage: jax.Array,
    ambient: float,
    from_photo: bool = True,
    depth_tolerance_mm: float = 3.0,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-vertex output colours (N, 3) in [0, 1], visibility (N,) and vertices (N, 3) mm.

    ``image`` (S, S, 3) is the crop seen by ``camera``; ``occlusion``, ``depth`` (view depth, mm)
    and ``coverage`` are maps of any resolution over the same crop (e.g. the fitting render). A
    face-region vertex on skin, or an eyeball vertex (``eye_region``: the iris and sclera seen
    between the lids), takes the photo's colour (bilinear) when it faces the camera, passes the
    depth test and is not occluded; every other vertex takes the fitted albedo under the fitted
    light. The two are blended over three rings of neighbours to hide the seam."""
    m = model
    vertices = geometry.shape(m, coeffs["id"], coeffs["exp"])
    normals = geometry.vertex_normals(vertices, m.triangles, m.vertex_triangles)
    rotation = cam.euler_to_rotation(coeffs["angles"])
    normals_cam = normals @ rotation.T
    shaded = shade(geometry.albedo(m, coeffs["tex"]), normals_cam, coeffs["light"], ambient)
    if not from_photo:
        return jnp.clip(shaded, 0, 1), jnp.zeros(vertices.shape[0], bool), vertices
    world = cam.rigid_transform(vertices, coeffs["angles"], coeffs["translation"])
    pixels = cam.project_perspective(world, camera)
    depth_mm = (camera.distance - world[:, 2]) * cam.MM_PER_DM
    h, w = image.shape[:2]
    inside = (pixels[:, 0] >= 0) & (pixels[:, 0] < w) & (pixels[:, 1] >= 0) & (pixels[:, 1] < h)
    sample = jax.scipy.ndimage.map_coordinates

    def at(grid: jax.Array, order: int) -> jax.Array:
        scale = grid.shape[0] / h
        return sample(grid, [pixels[:, 1] * scale - 0.5, pixels[:, 0] * scale - 0.5], order=order)

    surface = jnp.where(coverage > 0.99, depth, jnp.inf)
    occluded = at(occlusion, 0) > 0.5
    eye_to_vertex = world - jnp.array([0.0, 0.0, camera.distance])
    facing = jnp.sum(normals_cam * -eye_to_vertex, axis=-1) > 0.2 * jnp.linalg.norm(
        eye_to_vertex, axis=-1
    )
    visible = inside & facing & ~occluded & (depth_mm <= at(surface, 0) + depth_tolerance_mm)
    visible = visible & (((m.skin_weight > 0.5) & m.face_region) | m.eye_region)
    photo = jnp.stack([at(image[..., c], 1) for c in range(3)], axis=-1)
    weight = visible.astype(jnp.float32)
    n_tri = m.triangles.shape[0]
    count = jnp.maximum((m.vertex_triangles < n_tri).sum(1), 1)
    for _ in range(3):  # shrink the photo region smoothly: one-ring minimum of triangle means
        tri_mean = jnp.concatenate([weight[m.triangles].mean(axis=1), jnp.zeros(1)])
        weight = jnp.minimum(weight, tri_mean[m.vertex_triangles].sum(1) / count)
    colors = weight[:, None] * photo + (1 - weight[:, None]) * shaded
    return jnp.clip(colors, 0, 1), visible, vertices
