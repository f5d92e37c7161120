"""Evaluation: metrics as pure functions of arrays (``eval.metrics``: surfaces, landmarks,
segmentation, verification)."""
