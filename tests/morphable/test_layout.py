"""The coefficient layout reproduces Deng et al.'s 257 split and round-trips split/join."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from occface_jax.morphable import CoeffLayout


def test_deng_split_matches_published_slices():
    # Deep3DFaceRecon's Split_coeff: [:80], [80:144], [144:224], [224:227], [227:254], [254:257].
    layout = CoeffLayout.deng()
    flat = jnp.arange(2 * 257, dtype=jnp.float32).reshape(2, 257)
    parts = layout.split(flat)
    published = {
        "id": (0, 80),
        "exp": (80, 144),
        "tex": (144, 224),
        "angles": (224, 227),
        "light": (227, 254),
        "translation": (254, 257),
    }
    assert layout.size == 257 and set(parts) == set(published)
    for name, (a, b) in published.items():
        np.testing.assert_array_equal(parts[name], flat[:, a:b], err_msg=name)


def test_paper_layout_is_239_with_mono_light_and_scaled_ortho():
    layout = CoeffLayout.paper()
    assert layout.size == 239
    sizes = dict(layout.blocks)
    assert sizes["light"] == 9 and sizes["scale"] == 1 and sizes["translation"] == 2


@pytest.mark.parametrize("light", ["rgb", "mono"])
@pytest.mark.parametrize("pose", ["perspective", "scaled_ortho"])
def test_split_join_round_trip(default_model, light, pose):
    layout = CoeffLayout.for_model(default_model, light=light, pose=pose)
    flat = jax.random.normal(jax.random.key(0), (3, 5, layout.size))
    np.testing.assert_array_equal(layout.join(layout.split(flat)), flat)
    zeros = layout.zeros((2,))
    assert layout.join(zeros).shape == (2, layout.size)
    assert (zeros.get("scale", jnp.ones(1)) == 1).all()


def test_join_broadcasts_and_rejects_bad_blocks():
    layout = CoeffLayout.deng()
    parts = layout.zeros((4,))
    parts["light"] = jnp.ones(27)  # shared across the batch
    assert layout.join(parts).shape == (4, 257)
    with pytest.raises(ValueError, match="block 'exp' has 63"):
        layout.join({**parts, "exp": jnp.zeros((4, 63))})
    with pytest.raises(KeyError, match="angles"):
        layout.join({k: v for k, v in parts.items() if k != "angles"})
    with pytest.raises(ValueError, match="has 256 entries"):
        layout.split(jnp.zeros(256))
