"""Per-image analysis by synthesis of the morphable model (what ``occface reconstruct`` runs without
a regressor): the fitter (``fitter``), the loss it minimises (``objective``), the occlusion
estimate (``occlusion``, ``filters``), the feature masks (``features``), the de-occlusion fill
(``deocclusion``). The per-vertex texture is ``occface_jax.texture.vertex``."""

from occface_jax.fit.deocclusion import deocclusion_fill
from occface_jax.fit.features import (
    INNER_MOUTH,
    feature_mask,
    feature_masks,
    occlude_enclosed_features,
)
from occface_jax.fit.fitter import (
    FitInputs,
    FitRequest,
    FitResult,
    Fitter,
    fit_image,
    landmark_stage,
)
from occface_jax.fit.objective import (
    FaceRenderer,
    IdentityTerm,
    fit_objective,
    hidden_landmark_weights,
    landmark_stage_loss,
    landmark_weights,
)
from occface_jax.fit.occlusion import estimate_occlusion, occluder_colour_share

__all__ = [
    "INNER_MOUTH",
    "FaceRenderer",
    "FitInputs",
    "FitRequest",
    "FitResult",
    "Fitter",
    "IdentityTerm",
    "deocclusion_fill",
    "estimate_occlusion",
    "feature_mask",
    "feature_masks",
    "fit_image",
    "fit_objective",
    "hidden_landmark_weights",
    "landmark_stage",
    "landmark_stage_loss",
    "landmark_weights",
    "occlude_enclosed_features",
    "occluder_colour_share",
]
