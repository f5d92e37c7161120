"""Evaluation protocols: dataset layout -> scored samples -> results.json + a markdown table.

One module per protocol, one entry each in :data:`PROTOCOLS` (``occface evaluate PROTOCOL``); the
shared run (progress, resume, outputs) and the predictor around ``app.pipeline.Reconstructor`` are
in ``runner``. Metrics come from ``eval.metrics``; no protocol re-implements one.
"""

from occface_jax.eval.protocols import (
    inpainting,
    landmarks,
    lfw,
    mask_net,
    micc,
    now,
    scans,
    synthetic,
)
from occface_jax.eval.protocols.runner import Protocol

PROTOCOLS: dict[str, Protocol] = {
    "micc": micc.PROTOCOL,
    "now": now.PROTOCOL,
    "now_metrical": now.METRICAL,
    "landmarks": landmarks.PROTOCOL,
    "lfw": lfw.PROTOCOL,
    "inpainting": inpainting.PROTOCOL,
    "synthetic": synthetic.PROTOCOL,
    "mask_net": mask_net.PROTOCOL,
    "scans": scans.PROTOCOL,
}
