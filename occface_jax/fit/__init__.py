"""Per-image analysis by synthesis of the morphable model (what ``occface reconstruct`` runs without
a regressor): the fitter, the occlusion estimate, the feature masks, the de-occlusion fill."""

from occface_jax.fit.fitter import FitResult, Fitter, fit_image

__all__ = ["FitResult", "Fitter", "fit_image"]
