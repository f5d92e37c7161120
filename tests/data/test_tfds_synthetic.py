"""Tests of occface_jax/data/tfds_synthetic.py: a generated split written as array_record, read back
by index without TensorFlow (on the toy morphable model, 32 px)."""

from __future__ import annotations

import sys

import numpy as np

from occface_jax.data.synth import SynthConfig, SyntheticFaces
from occface_jax.data.tfds_synthetic import SyntheticOccludedFaces, decode_record


def test_written_split_round_trips_every_sample(tmp_path, toy_model):
    config = SynthConfig(image_size=32)
    builder = SyntheticOccludedFaces(
        data_dir=tmp_path,
        image_size=32,
        num_examples=6,
        seed=3,
        model=toy_model,
        synth_config=config,
    )
    builder.download_and_prepare()
    assert list(tmp_path.rglob("*.array_record*"))
    source = builder.as_data_source("train")
    assert len(source) == 6
    reference = SyntheticFaces(toy_model, config, seed=3, size=6)
    seen = set()
    for k in range(len(source)):
        record = decode_record(source[k])
        i = int(record["index"])
        seen.add(i)
        truth = reference[i]
        for key in ("occluded", "clean", "mask", "contour", "face_region"):
            np.testing.assert_allclose(record[key], truth[key], atol=0.5 / 255 + 1e-6, err_msg=key)
        for key in ("landmarks", "coeffs", "depth", "landmarks_visible", "focal"):
            np.testing.assert_array_equal(record[key], truth[key], err_msg=key)
    assert seen == set(range(6))
    assert "tensorflow" not in sys.modules
