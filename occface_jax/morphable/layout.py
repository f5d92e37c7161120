"""Named blocks of a flat coefficient vector: one object instead of literal slices like ``[:, 80:144]``.

Keys: ``id``, ``exp``, ``tex`` (model coefficients), ``angles`` (pitch, yaw, roll, radians),
``light`` (27 = 9 SH bands x RGB, or 9 monochrome), and the pose's translation:
- perspective (Deng et al.): ``translation`` (3), decimetres in the camera frame;
- scaled orthographic (the paper): ``scale`` (1, pixels per mm) and ``translation`` (2, pixels).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from occface_jax.morphable.model import MorphableModel

LIGHT_SIZES = {"rgb": 27, "mono": 9}
POSES = ("perspective", "scaled_ortho")


@dataclasses.dataclass(frozen=True)
class CoeffLayout:
    """Ordered (name, size) blocks of a flat coefficient vector; hashable, usable as a jit static arg."""

    blocks: tuple[tuple[str, int], ...]
    light: str = "rgb"
    pose: str = "perspective"

    def __post_init__(self) -> None:
        names = [n for n, _ in self.blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate block names in {names}")
        if self.light not in LIGHT_SIZES or self.pose not in POSES:
            raise ValueError(f"light must be one of {list(LIGHT_SIZES)}, pose one of {POSES}")

    @classmethod
    def build(
        cls, n_id: int, n_exp: int, n_tex: int, light: str = "rgb", pose: str = "perspective"
    ) -> CoeffLayout:
        """Deng et al.'s order (id, exp, tex, angles, light, translation) for any sizes."""
        if light not in LIGHT_SIZES:
            raise ValueError(f"light must be 'rgb' (27) or 'mono' (9), got {light!r}")
        if pose == "perspective":
            pose_blocks = (("translation", 3),)
        elif pose == "scaled_ortho":
            pose_blocks = (("scale", 1), ("translation", 2))
        else:
            raise ValueError(f"pose must be 'perspective' or 'scaled_ortho', got {pose!r}")
        blocks = (
            ("id", n_id),
            ("exp", n_exp),
            ("tex", n_tex),
            ("angles", 3),
            ("light", LIGHT_SIZES[light]),
            *pose_blocks,
        )
        return cls(blocks=blocks, light=light, pose=pose)

    @classmethod
    def deng(cls) -> CoeffLayout:
        """Deng et al. 2019's 257-vector: id 80, exp 64, tex 80, angles 3, light 27, translation 3."""
        return cls.build(80, 64, 80, "rgb", "perspective")

    @classmethod
    def paper(cls) -> CoeffLayout:
        """Zhao et al. 2022's 239-vector: id 80, exp 64, tex 80, angles 3, mono light 9, scale, t2d."""
        return cls.build(80, 64, 80, "mono", "scaled_ortho")

    @classmethod
    def for_model(
        cls, model: MorphableModel, light: str = "rgb", pose: str = "perspective"
    ) -> CoeffLayout:
        """The layout sized for ``model``'s identity, expression and albedo bases."""
        return cls.build(model.n_id, model.n_exp, model.n_tex, light, pose)

    @property
    def size(self) -> int:
        return sum(s for _, s in self.blocks)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.blocks)

    def slices(self) -> dict[str, slice]:
        """Each block's slice of the flat vector."""
        ends = np.cumsum([s for _, s in self.blocks])
        return {n: slice(int(e - s), int(e)) for (n, s), e in zip(self.blocks, ends, strict=True)}

    def split(self, flat: jnp.ndarray) -> dict[str, jnp.ndarray]:
        """(..., size) -> {name: (..., block size)}."""
        if flat.shape[-1] != self.size:
            raise ValueError(f"coefficient vector has {flat.shape[-1]} entries, layout {self.size}")
        return {n: flat[..., s] for n, s in self.slices().items()}

    def join(self, parts: dict[str, jnp.ndarray]) -> jnp.ndarray:
        """{name: (..., block size)} -> (..., size); leading axes broadcast; raises on missing keys."""
        missing = [n for n in self.names if n not in parts]
        if missing:
            raise KeyError(f"missing coefficient block(s): {missing}")
        for name, size in self.blocks:
            if parts[name].shape[-1] != size:
                raise ValueError(f"block {name!r} has {parts[name].shape[-1]} entries, want {size}")
        arrays = [jnp.asarray(parts[n]) for n in self.names]
        batch = jnp.broadcast_shapes(*(a.shape[:-1] for a in arrays))
        return jnp.concatenate([jnp.broadcast_to(a, (*batch, a.shape[-1])) for a in arrays], -1)

    def zeros(self, batch_shape: tuple[int, ...] = (), dtype=jnp.float32) -> dict[str, jnp.ndarray]:
        """All-zero coefficients (the mean face, frontal, no light offset); scale starts at 1."""
        parts = {n: jnp.zeros((*batch_shape, s), dtype) for n, s in self.blocks}
        if "scale" in parts:
            parts["scale"] = jnp.ones((*batch_shape, 1), dtype)
        return parts
