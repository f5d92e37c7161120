"""Metrics as pure functions of arrays: surfaces (``surface``), landmarks (``landmarks``),
segmentation (``segmentation``)."""
