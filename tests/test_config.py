"""The config loader and the typed ``KEY=VALUE`` overrides (``occface_jax.config``)."""

from __future__ import annotations

import pytest

from occface_jax.config import apply_overrides, config_names, flat_keys, load_config
from occface_jax.errors import OccfaceError


@pytest.fixture
def mask():
    return load_config("mask", "smoke")


def _refused(config, pair: str) -> str:
    """The one-line message with which ``pair`` is refused (and the config left as it was)."""
    before = config.to_dict()
    with pytest.raises(OccfaceError) as info:
        apply_overrides(config, [pair], "configs/mask.py")
    message = str(info.value)
    assert "\n" not in message
    assert config.to_dict() == before
    return message


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("train.steps=abc", "config key 'train.steps' expects an int; got 'abc'"),
        ("train.flip=no", "config key 'train.flip' expects a bool (true or false); got 'no'"),
        ("train.flip=1", "expects a bool (true or false)"),
        ("train.batch_size=3.5", "config key 'train.batch_size' expects an int; got '3.5'"),
        ("train.steps=-5", "config key 'train.steps' expects a non-negative int (>= 0)"),
        ("train.batch_size=0", "config key 'train.batch_size' expects a positive int (>= 1)"),
        ("train.log_every=0", "config key 'train.log_every' expects a positive int (>= 1)"),
        ("train.lr=fast", "config key 'train.lr' expects a finite number; got 'fast'"),
        ("train.lr=nan", "expects a finite number"),
        ("data.occlusion.count=(1,x)", "config key 'data.occlusion.count[1]' expects an int"),
        ("data.occlusion.count=(1,-2)", "'data.occlusion.count[1]' expects a non-negative int"),
        ("data.occlusion.coverage=0.2", "'data.occlusion.coverage' expects 2 comma-separated"),
        ("data.occlusion.coverage=(0.1,0.2,0.3)", "expects 2 comma-separated numbers"),
        ("data.occlusion.kinds=hand,,cup", "expects comma-separated items"),
        ("train=3", "config key 'train' is a group of settings; set one of them: train.batch_size"),
        ("train.steps", "--set expects KEY=VALUE, got 'train.steps'"),
        ("=3", "--set expects KEY=VALUE"),
    ],
)
def test_bad_values_are_refused_with_one_line(mask, pair, expected):
    assert expected in _refused(mask, pair)


def test_unknown_key_names_the_file_and_the_nearest_keys(mask):
    message = _refused(mask, "train.step=5")
    assert message.startswith("unknown config key 'train.step' (see configs/mask.py); nearest: ")
    assert "train.steps" in message.split("nearest: ")[1].split(", ")
    assert "nearest" not in _refused(mask, "zzzz=1")  # nothing close: no list
    assert "unknown config key 'nope.steps'" in _refused(mask, "nope.steps=1")


def test_good_values_take_the_defaults_types(mask):
    apply_overrides(
        mask,
        [
            "train.steps=500",
            "train.flip=false",
            "train.seed=+3",
            "train.lr=1",  # a float setting takes an int
            "train.weight_decay=2.5e-5",
            "data.source=photos",
            "data.root='/tmp/my photos'",  # quotes are dropped, spaces kept
            "data.occlusion.count=[2, 3]",
            "data.occlusion.coverage=0.2,0.3",
            "data.occlusion.kinds=('hand', cup)",  # strings: any length
            "data.validation_size=0",  # 0 holds nothing out: allowed
            "model.features = 6",
        ],
    )
    assert mask.train.steps == 500 and type(mask.train.steps) is int
    assert mask.train.flip is False
    assert mask.train.seed == 3
    assert mask.train.lr == 1.0 and type(mask.train.lr) is float
    assert mask.train.weight_decay == 2.5e-5
    assert mask.data.source == "photos" and mask.data.root == "/tmp/my photos"
    assert mask.data.occlusion.count == (2, 3)
    assert mask.data.occlusion.coverage == (0.2, 0.3)
    assert mask.data.occlusion.kinds == ("hand", "cup")
    assert mask.data.validation_size == 0 and mask.model.features == 6
    apply_overrides(mask, ["train.flip=True", "data.occlusion.kinds=glasses"])
    assert mask.train.flip is True and mask.data.occlusion.kinds == ("glasses",)


def test_every_packaged_default_survives_its_own_text():
    """Writing each default back as text gives the same value: the rules fit the shipped configs."""
    for name in config_names():
        config = load_config(name)
        for key in flat_keys(config):
            value = _get(config, key)
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            apply_overrides(config, [f"{key}={text}"], name)
            assert _get(config, key) == value, key


def _get(config, key: str):
    for part in key.split("."):
        config = config[part]
    return config


def test_load_config_by_name_and_by_path(tmp_path):
    assert {"data", "fit", "mask"} <= set(config_names())
    fit = load_config("fit")
    assert fit.steps == 300 and load_config("fit", "test").steps == 20
    own = tmp_path / "mine.py"
    own.write_text(
        "import ml_collections\n"
        "def get_config(variant=''):\n"
        "    c = ml_collections.ConfigDict()\n"
        "    c.steps = 7 if variant == 'small' else 70\n"
        "    return c\n"
    )
    assert load_config(str(own)).steps == 70
    assert load_config(str(own), "small").steps == 7


def test_load_config_errors(tmp_path):
    with pytest.raises(
        OccfaceError,
        match=r"no config named 'nope'; known: contour, data, face_mesh, fit, inpainting, mask",
    ):
        load_config("nope")
    with pytest.raises(OccfaceError, match=r"config file .*missing\.py not found"):
        load_config(str(tmp_path / "missing.py"))
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(OccfaceError, match=r"empty\.py defines no get_config\(\)"):
        load_config(str(empty))
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config(:\n")
    with pytest.raises(OccfaceError, match=r"broken\.py failed to load: SyntaxError"):
        load_config(str(broken))
    with pytest.raises(OccfaceError, match=r"configs/fit\.py: unknown fit config variant 'huge'"):
        load_config("fit", "huge")
    with pytest.raises(OccfaceError, match=r"configs/mask\.py: unknown mask config variant"):
        load_config("mask", "huge")
