"""The Flax identity network against dlib's own ``compute_face_descriptor`` on real face chips, its
same/different-person decisions, gradients of the identity loss, and the weight cache."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.errors import WeightsFileError
from occface_jax.faces.detect import dlib_shape
from occface_jax.faces.landmarks_io import dlib_xml_faces
from occface_jax.models import face_id

dlib = pytest.importorskip("dlib", reason="landmarks extra (dlib-bin) not installed")
pytest.importorskip("face_recognition_models", reason="landmarks extra not installed")


@pytest.fixture(scope="module")
def net():
    return face_id.load_face_id_net()


@pytest.fixture(scope="module")
def recognizer():
    from occface_jax.extras import dlib_model_path

    return dlib.face_recognition_model_v1(str(dlib_model_path("face_recognition")))


@pytest.fixture(scope="module")
def real_chips(shared_dir):
    """dlib's own 150x150 chips (uint8) of every annotated face in the dlib example XMLs."""
    chips = []
    for _, path, face in dlib_xml_faces(shared_dir / "faces" / "dlib"):
        image = dlib.load_rgb_image(str(path))
        chips.append(dlib.get_face_chip(image, dlib_shape(face.box, face.landmarks), 150, 0.25))
    return np.stack(chips)


@pytest.fixture(scope="module")
def descriptors(net, recognizer, real_chips) -> tuple[np.ndarray, np.ndarray]:
    """(Flax, dlib) descriptors of the same chips."""
    ours = np.asarray(net(jnp.asarray(real_chips, jnp.float32) / 255.0), np.float64)
    return ours, np.array([recognizer.compute_face_descriptor(chip) for chip in real_chips])


def test_descriptors_match_dlib_on_real_faces(real_chips, descriptors):
    assert len(real_chips) >= 10
    ours, theirs = descriptors
    cosine = (
        np.sum(ours * theirs, 1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    )
    assert cosine.min() > 0.9999, cosine
    assert np.abs(ours - theirs).max() < 1e-3


def test_same_person_decisions_agree_with_dlib(net, recognizer, shared_dir):
    """bald_guys.jpg (dlib's clustering example) holds several photos each of a few people."""
    from occface_jax.faces.detect import FaceDetector

    image = np.asarray(dlib.load_rgb_image(str(shared_dir / "faces" / "dlib" / "bald_guys.jpg")))
    faces = FaceDetector("hog", upsample=1).detect(image, all_faces=True)
    chips = np.stack(
        [dlib.get_face_chip(image, dlib_shape(f.box, f.landmarks), 150, 0.25) for f in faces]
    )
    ours = np.asarray(net(jnp.asarray(chips, jnp.float32) / 255.0), np.float64)
    theirs = np.array([recognizer.compute_face_descriptor(chip) for chip in chips])

    def same(d: np.ndarray) -> np.ndarray:
        return np.linalg.norm(d[:, None] - d[None], axis=-1) < face_id.SAME_PERSON_THRESHOLD

    upper = np.triu_indices(len(faces), 1)
    assert 0 < same(theirs)[upper].sum() < len(upper[0])  # both kinds of pairs occur
    np.testing.assert_array_equal(same(ours), same(theirs))
    clusters_ours = dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in ours], 0.6)
    clusters_theirs = dlib.chinese_whispers_clustering([dlib.vector(v) for v in theirs], 0.6)
    assert len(set(clusters_ours)) == len(set(clusters_theirs)) > 1


def test_features_are_the_pyramid_that_feeds_the_descriptor(net, real_chips):
    chips = jnp.asarray(real_chips[:2], jnp.float32) / 255.0
    features = net.features(chips)
    shapes = [f.shape for f in features]
    assert shapes == [
        (2, 35, 35, 32),
        (2, 17, 17, 64),
        (2, 8, 8, 128),
        (2, 4, 4, 256),
        (2, 2, 2, 256),
    ]
    manual = jnp.mean(features[-1], axis=(1, 2)) @ net.fc.kernel[...]
    np.testing.assert_allclose(manual, net(chips), rtol=1e-5, atol=1e-6)


def test_zero_padded_add_matches_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3, 3, 4)), rng.normal(size=(2, 4, 4, 2))
    expected = np.zeros((2, 4, 4, 4))
    expected[:, :3, :3, :4] += a
    expected[:, :4, :4, :2] += b
    np.testing.assert_allclose(
        face_id.add_zero_padded(jnp.asarray(a), jnp.asarray(b)), expected, rtol=1e-6, atol=1e-6
    )


def test_weight_cache_roundtrip_and_clear_errors(tmp_path):
    from occface_jax.extras import dlib_model_path

    dat = dlib_model_path("face_recognition")
    npz = face_id.convert_dlib_weights(dat, tmp_path / "weights.npz")
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 150, 150, 3)), jnp.float32)
    np.testing.assert_array_equal(
        face_id.load_face_id_net(npz)(x), face_id.load_face_id_net(dat)(x)
    )
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(npz.read_bytes()[:5000])
    with pytest.raises(WeightsFileError, match="corrupt"):
        face_id.load_face_id_net(truncated)
    with np.load(npz) as data:
        arrays = {key: data[key] for key in data.files}
    np.savez(tmp_path / "old.npz", **{**arrays, "format_version": np.array(99)})
    with pytest.raises(WeightsFileError, match="format 99"):
        face_id.load_face_id_net(tmp_path / "old.npz")
    np.savez(tmp_path / "narrow.npz", **{**arrays, "fc_kernel": arrays["fc_kernel"][:, :64]})
    with pytest.raises(WeightsFileError, match="fc_kernel has shape"):
        face_id.load_face_id_net(tmp_path / "narrow.npz")
