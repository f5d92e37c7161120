"""Evaluation metrics: scan-to-mesh distances and rigid/similarity alignment."""
