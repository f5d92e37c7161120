"""Faces in real photos: detection, 68 landmarks, alignment, landmark files, identity features.

- ``detect``: ``FaceDetector`` / ``detect_faces`` (dlib HOG or CNN + 68-point predictor, largest first),
  ``landmarks_to_5`` (Deng et al.'s 5 points).
- ``align``: ``align_face`` (Deng et al.'s 224x224 crop, with forward and inverse maps).
- ``chip``: dlib's 150x150 face chip in JAX (``extract_face_chip``, ``face_chip_transform``).
- ``identity``: ``embed_faces`` and ``identity_loss`` (Eq. 16) with ``occface_jax.models.face_id``.
- ``landmarks_io``: ``.pts``, ``.ljson``, dlib XML readers; ``metrics``: ``landmark_nme``.
- ``dlib_weights``: a reader of dlib's DNN serialization.

dlib and its models come from the ``landmarks`` extra (``pip install -e '.[landmarks]'``), imported only
when a detector or the original weights are needed. Submodules are imported explicitly (this package
imports nothing heavy on its own).
"""
