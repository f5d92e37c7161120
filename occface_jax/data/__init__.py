"""Data engine: synthetic occluded faces with full ground truth (``synth``), the occluder library
(``occluders``), contours (``contour``), occlusion augmentation of real photos (``augment``), real-format
loaders (``folder``, ``celebamask``, ``lfw``, ``scans``: MICC Florence and NoW), grain pipelines
(``pipeline``) and a TFDS array_record builder (``tfds_synthetic``).

Submodules are imported on demand (``from occface_jax.data.synth import SyntheticFaces``) so that a
loader does not pull in JAX or TFDS.
"""
