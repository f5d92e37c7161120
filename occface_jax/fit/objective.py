"""What the fit minimises: the paper's Eq. 15 over one aligned crop, built from ``losses/``.

- Landmark stage: Eq. 19 (landmarks) + Eq. 17 (prior on identity and expression) on the 68
  landmark vertices alone (:func:`landmark_stage_loss`).
- Photometric stage (:func:`fit_objective`): lambda_phot Eq. 18 (attention 1 on the rendered face,
  0.1 elsewhere, 0 on the occluder; optionally through the robust kernel s log(1 + d / s)) +
  lambda_land Eq. 19 (landmarks under the occluder down-weighted) + lambda_regu Eq. 17 +, with an
  :class:`IdentityTerm`, lambda_feat Eq. 16 (dlib's face-ID network on 150 x 150 chips of the
  render and the photo, both cut with the photo's landmarks).

Images are (S, S, 3) RGB in [0, 1]; landmarks (68, 2) pixels (x right, y down) of the same image.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from occface_jax.losses import recon
from occface_jax.losses.identity import embed_faces, identity_loss_to_embedding
from occface_jax.morphable import MorphableModel, contour
from occface_jax.morphable.correspondence import SurfacePoints
from occface_jax.morphable.rendering import Rendering, project_dense, project_landmarks, render
from occface_jax.render import camera as cam
from occface_jax.texture.atlas import sample_nearest

Coeffs = dict[str, jax.Array]


def landmark_weights(jaw_weight: float, eye_weight: float = 1.0) -> np.ndarray:
    """(68,) Deng et al.'s landmark weights with the jaw line (0-16) scaled by ``jaw_weight`` and
    the eyes (36-47) by ``eye_weight``."""
    w = recon.LANDMARK_WEIGHTS.copy()
    w[:17] *= jaw_weight
    w[36:48] *= eye_weight
    return w


def hidden_landmark_weights(
    occlusion: jax.Array, landmarks: jax.Array, hidden_weight: float
) -> jax.Array:
    """(68,) landmark weight factors: 1 where a landmark's pixel (x right, y down, pixels of
    ``occlusion``) is visible, ``hidden_weight`` where the occlusion mask covers it (a detector's
    guess under an occluder is worse than its visible points, yet far from worthless:
    ``experiments/results/occluded_landmarks.md``)."""
    return 1.0 - (1.0 - hidden_weight) * sample_nearest(occlusion, landmarks)


class DenseLandmarks(NamedTuple):
    """The dense landmark term's inputs: the model's ``points`` corresponding to MediaPipe's 468,
    their ``target`` (468, 2) pixels in the fitted image, ``weights`` (468,) (the
    correspondence's per-point weights times the hidden-landmark factor) and ``facing_floor``,
    the weight factor of a point whose surface turns away from the camera."""

    points: SurfacePoints
    target: jax.Array
    weights: jax.Array
    facing_floor: jax.Array


FULL_FACING = 0.3  # a surface point facing the camera at least this much (normal z) counts fully


def dense_landmark_loss(
    model: MorphableModel, params: Coeffs, camera: cam.PerspectiveCamera, dense: DenseLandmarks
) -> jax.Array:
    """Eq. 19 over the 468 dense points: weighted mean squared pixel distance. Points whose
    surface turns away from the camera under the current pose (self-occluded: on a turned face
    the mesh's far-side outline points sit on the silhouette, not on their 3-D spot) weigh down
    to ``facing_floor`` (the facing is taken out of the gradient)."""
    pixels, facing = project_dense(model, params, camera, dense.points)
    visible = jnp.clip(jax.lax.stop_gradient(facing) / FULL_FACING, 0.0, 1.0)
    factor = dense.facing_floor + (1.0 - dense.facing_floor) * visible
    return recon.landmark_loss(dense.target, pixels, dense.weights * factor)


def landmark_stage_loss(
    free: Coeffs,
    fixed: Coeffs,
    model: MorphableModel,
    target: jax.Array,
    weights: jax.Array,
    prior_weights: jax.Array,
    camera: cam.PerspectiveCamera,
    jaw: contour.JawContour | None,
    dense: DenseLandmarks | None = None,
    dense_weight: jax.Array | float = 1.0,
) -> jax.Array:
    """Eq. 19 + Eq. 17 for the ``free`` blocks (id, exp, angles, translation) over ``fixed``:
    the landmark loss of the projected landmark vertices against ``target`` (68, 2) with
    ``weights`` (68,), plus ``prior_weights`` (w_id, w_exp) on the identity and expression, plus
    ``dense_weight`` x the dense term when ``dense`` is given."""
    params = dict(fixed, **free)
    predicted = project_landmarks(model, params, camera, jaw)
    prior = recon.coefficient_prior(
        free["id"], free["exp"], jnp.zeros(1), prior_weights[0], prior_weights[1], 0.0
    )
    loss = recon.landmark_loss(target, predicted, weights) + prior
    if dense is not None:
        loss = loss + dense_weight * dense_landmark_loss(model, params, camera, dense)
    return loss


@dataclasses.dataclass(frozen=True, eq=False)
class FaceRenderer:
    """:func:`~occface_jax.morphable.rendering.render` of a fitted model with its fixed settings:
    the fitting camera, ``ambient`` light, the precomputed antialias ``adjacency`` of the model's
    triangles and its ``jaw`` contour (None: fixed jaw vertices)."""

    camera: cam.PerspectiveCamera
    ambient: float
    adjacency: Any
    jaw: contour.JawContour | None

    def __call__(
        self, model: MorphableModel, params: Coeffs, background: jax.Array | None
    ) -> Rendering:
        return render(
            model,
            params,
            self.camera,
            ambient=self.ambient,
            background=background,
            adjacency=self.adjacency,
            jaw=self.jaw,
        )


@dataclasses.dataclass(frozen=True, eq=False)
class IdentityTerm:
    """Eq. 16 in the fit: 1 - cos between the face-ID descriptors of the render and of the photo,
    both chips cut with the photo's landmarks (so the two are aligned alike and the gradient
    flows through the render alone). ``graphdef`` is the network's structure
    (``nnx.split(load_face_id_net())``); its weights travel into jit as an argument (``state``),
    not folded into the program as constants."""

    graphdef: Any

    def embed(self, state: Any, image: jax.Array, landmarks: jax.Array) -> jax.Array:
        """The (128,) descriptor of the face in ``image`` (S, S, 3) with ``landmarks`` (68, 2)."""
        return embed_faces(nnx.merge(self.graphdef, state), image[None], landmarks[None])[0]

    def __call__(
        self, state: Any, embedding: jax.Array, rendered: jax.Array, landmarks: jax.Array
    ) -> jax.Array:
        """The loss (...) of ``rendered`` (..., S, S, 3) against the photos' ``embedding``
        (..., 128), chips cut with ``landmarks`` (..., 68, 2): a scalar for one face, (B,) for a
        batch of faces (the fit's batched path)."""
        net = nnx.merge(self.graphdef, state)
        lead = rendered.shape[:-3]
        loss = identity_loss_to_embedding(
            net,
            embedding.reshape((-1,) + embedding.shape[-1:]),
            rendered.reshape((-1,) + rendered.shape[-3:]),
            landmarks.reshape((-1,) + landmarks.shape[-2:]),
        )
        return loss.reshape(lead)


def fit_objective(
    params: Coeffs,
    model: MorphableModel,
    image: jax.Array,
    target: jax.Array,
    landmark_weights: jax.Array,
    occlusion: jax.Array,
    identity_inputs: tuple[Any, jax.Array] | None,
    *,
    renderer: FaceRenderer,
    weights: recon.LossWeights,
    robust_scale: float,
    identity: IdentityTerm | None = None,
    dense: DenseLandmarks | None = None,
    detached: frozenset[str] = frozenset(),
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(total, terms) of the photometric stage for ``params`` on the crop ``image`` at the render
    size, with ``target`` landmarks (68, 2) of weights (68,) and the ``occlusion`` map (1 =
    occluder, out of the photometric term). ``identity_inputs`` = (network state, the photo's
    descriptor) when ``identity`` is given (the 'feat' term), else None. ``dense``: the 468-point
    term ('dense', weight ``weights.dense``), at the render size. The blocks named in ``detached``
    reach the photometric and identity terms through ``stop_gradient``: only the landmark terms
    and the prior move them."""
    seen = {k: jax.lax.stop_gradient(v) if k in detached else v for k, v in params.items()}
    r = renderer(model, seen, image)
    attention = recon.photometric_attention(jax.lax.stop_gradient(r.mask), occlusion)
    projected = r.landmarks
    if detached:
        projected = project_landmarks(model, params, renderer.camera, renderer.jaw)
    terms = {
        "phot": recon.photometric_loss(image, r.image, attention, robust_scale=robust_scale),
        "land": recon.landmark_loss(target, projected, landmark_weights),
        "regu": recon.coefficient_prior(
            params["id"], params["exp"], params["tex"], weights.w_id, weights.w_exp, weights.w_tex
        ),
    }
    if identity is not None:
        state, embedding = identity_inputs
        terms["feat"] = identity(state, embedding, r.image, target)
    if dense is not None:
        terms["dense"] = dense_landmark_loss(model, params, renderer.camera, dense)
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    return total, terms
