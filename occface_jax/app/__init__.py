"""Inference: photo -> detect -> align -> fit or networks -> texture -> files (``pipeline``), batches
of photos with their summary (``reconstruct``), trained networks at inference (``predictors``: they
import ``models/``, never ``train/``)."""
