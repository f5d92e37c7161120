"""Metrics as pure functions of arrays: surfaces (``surface``), landmarks (``landmarks``),
segmentation (``segmentation``), face verification (``verification``). Experiments compute their
numbers with these; none re-implements one."""
