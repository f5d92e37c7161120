"""Occluder library: procedural glasses, hands, food, cups, phones, microphones, medical masks, hair
strands and cut-outs of real photos, each drawn as an RGB layer with an exact alpha, and the compositing
that puts them in front of a face with a controlled coverage.

Conventions:
- Images are float32 (H, W, 3) RGB in [0, 1]; alphas (H, W) float32 in [0, 1] with anti-aliased edges.
- The occlusion mask is binary: 1 where the combined occluder alpha is >= ``MASK_ALPHA_THRESHOLD``
  *and* the pixel belongs to the face region. Clear spectacle lenses (alpha ~0.1-0.25) therefore do not
  count as occlusion, tinted sunglass lenses (alpha >= 0.75) do.
- Occluders are placed in a :class:`FaceFrame`: origin between the eyes, x axis from the image-left to
  the image-right eye, y axis towards the mouth, unit = eye distance in pixels; so the same parameters
  give the same look at any image size and roll.
- Every random choice comes from the ``np.random.Generator`` passed in: same generator state, same layer.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import cv2
import numpy as np
from skimage import data as skimage_data

from occface_jax.data import draw

MASK_ALPHA_THRESHOLD = 0.5

# Canonical positions in face-frame units (eye distance = 1, origin between the eyes, y towards the chin).
CANONICAL = {
    "eye_a": (-0.5, 0.0),  # image-left eye (the subject's right eye)
    "eye_b": (0.5, 0.0),
    "nose": (0.0, 0.72),
    "mouth": (0.0, 1.15),
    "chin": (0.0, 1.75),
    "forehead": (0.0, -0.85),
    "cheek_a": (-0.75, 0.85),
    "cheek_b": (0.75, 0.85),
}


@dataclasses.dataclass(frozen=True)
class Layer:
    """One occluder: straight (not premultiplied) ``rgb`` (H, W, 3) and ``alpha`` (H, W), float32."""

    rgb: np.ndarray
    alpha: np.ndarray
    kind: str


@dataclasses.dataclass(frozen=True)
class FaceFrame:
    """Where a face sits in an image: ``origin`` (2,) px between the eyes, ``unit`` = eye distance in px,
    ``angle`` = roll of the eye line in radians (image axes, y down); ``points`` overrides canonical
    feature positions (face-frame units) when landmarks are known."""

    origin: np.ndarray
    unit: float
    angle: float
    points: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> FaceFrame:
        """Frame from 68 iBUG landmarks (68, 2) in pixels (x, y)."""
        lm = np.asarray(landmarks, np.float64)
        eye_a, eye_b = lm[36:42].mean(0), lm[42:48].mean(0)
        delta = eye_b - eye_a
        unit = float(max(np.hypot(*delta), 1.0))
        frame = cls(
            origin=(eye_a + eye_b) / 2, unit=unit, angle=float(np.arctan2(delta[1], delta[0]))
        )
        named = {
            "nose": lm[30],
            "mouth": lm[48:68].mean(0),
            "chin": lm[8],
            "cheek_a": (lm[2] + lm[31]) / 2,
            "cheek_b": (lm[14] + lm[35]) / 2,
        }
        points = {k: tuple(frame.to_local(v[None])[0]) for k, v in named.items()}
        return dataclasses.replace(frame, points=points)

    @classmethod
    def from_box(cls, x0: float, y0: float, x1: float, y1: float) -> FaceFrame:
        """Frame of an upright face filling the box (pixels) from eyebrows-ish to chin, as aligned crops
        (CelebA-HQ, Deng et al.'s 224 crop) and face detectors give."""
        width = x1 - x0
        origin = np.array([(x0 + x1) / 2, y0 + 0.36 * (y1 - y0)])
        return cls(origin=origin, unit=0.36 * width, angle=0.0)

    def point(self, name: str) -> np.ndarray:
        """A named feature in face-frame units (2,)."""
        return np.asarray(self.points.get(name, CANONICAL[name]), np.float64)

    def to_pixels(self, local: np.ndarray) -> np.ndarray:
        """Face-frame points (N, 2) to pixels (N, 2)."""
        return self.origin + self.unit * draw.rotate(np.asarray(local, np.float64), self.angle)

    def to_local(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) to face-frame points (N, 2)."""
        return draw.rotate((np.asarray(pixels, np.float64) - self.origin) / self.unit, -self.angle)


# ----------------------------------------------------------------------------------------- colours

SKIN_TONES = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.89, 0.69, 0.56],
        [0.78, 0.57, 0.44],
        [0.62, 0.43, 0.31],
        [0.42, 0.28, 0.19],
    ]
)
HAIR_TONES = np.array(
    [
        [0.05, 0.04, 0.03],
        [0.22, 0.13, 0.07],
        [0.45, 0.30, 0.16],
        [0.78, 0.63, 0.38],
        [0.55, 0.22, 0.10],
    ]
)


def skin_colour(rng: np.random.Generator) -> np.ndarray:
    """A skin colour (3,) interpolated between reference tones, light to dark."""
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = min(int(t), len(SKIN_TONES) - 2)
    return (SKIN_TONES[i] * (1 - (t - i)) + SKIN_TONES[i + 1] * (t - i)) * rng.uniform(0.9, 1.05)


def _light_dir(rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(a), np.sin(a)])


def _paint(shape: tuple[int, int], pieces: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple:
    """Composite (coverage (H, W), rgb (H, W, 3)) pieces back to front; returns straight rgb, alpha."""
    alpha = np.zeros(shape, np.float32)
    premult = np.zeros(shape + (3,), np.float32)
    for coverage, rgb in pieces:
        rgb = np.broadcast_to(np.asarray(rgb, np.float32), shape + (3,))
        premult = premult * (1 - coverage[..., None]) + rgb * coverage[..., None]
        alpha = alpha * (1 - coverage) + coverage
    straight = premult / np.maximum(alpha[..., None], 1e-6)
    return np.clip(straight, 0, 1).astype(np.float32), alpha.astype(np.float32)


def _layer(kind: str, shape: tuple[int, int], pieces) -> Layer:
    rgb, alpha = _paint(shape, pieces)
    return Layer(rgb=rgb, alpha=alpha, kind=kind)


def _pixel_centres(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x), each (H, W), at integer + 0.5."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    return ys, xs


def _anchor(
    rng: np.random.Generator, frame: FaceFrame, names: Sequence[str], jitter: float
) -> np.ndarray:
    """A feature chosen at random among ``names``, moved by up to ``jitter`` face units."""
    base = frame.point(names[rng.integers(len(names))])
    return base + rng.uniform(-jitter, jitter, 2)


# ----------------------------------------------------------------------------------------- occluders


def glasses(
    rng: np.random.Generator,
    frame: FaceFrame,
    shape: tuple[int, int],
    scale: float,
    sunglasses: bool,
) -> Layer:
    """Spectacles or sunglasses: two lenses over the eyes, a frame ring, a bridge and temple arms."""
    u = frame.unit
    a = rng.uniform(0.30, 0.40) * scale
    b = a * rng.uniform(0.6, 0.95)
    power = rng.uniform(2.0, 5.0)
    rim = rng.uniform(0.03, 0.08) * scale
    dy = rng.uniform(0.0, 0.1)
    spread = rng.uniform(0.48, 0.56)
    frame_rgb = rng.uniform(0.0, 0.35, 3) if rng.uniform() < 0.7 else rng.uniform(0.3, 0.9, 3)
    if sunglasses:
        lens_alpha = rng.uniform(0.8, 0.97)
        lens_rgb = rng.uniform(0.02, 0.2) + rng.uniform(0.0, 0.12, 3)
    else:
        lens_alpha = rng.uniform(0.08, 0.25)
        lens_rgb = rng.uniform(0.7, 1.0, 3)
    lenses, rings = [], []
    for side in (-1, 1):
        c = frame.to_pixels(np.array([[side * spread, dy]]))[0]
        inner = draw.superellipse(c, (a * u, b * u), power, frame.angle)
        outer = draw.superellipse(c, ((a + rim) * u, (b + rim) * u), power, frame.angle)
        lenses.append(inner)
        rings.append((outer, inner))
    lens_cov = draw.fill_polygons(shape, lenses)
    ring_cov = np.clip(draw.fill_polygons(shape, [o for o, _ in rings]) - lens_cov, 0.0, 1.0)
    arm_y = dy - b * 0.4
    bridge = draw.capsule(
        *frame.to_pixels(np.array([[-(spread - a), arm_y], [spread - a, arm_y]])), rim * u, rim * u
    )
    arms = [
        draw.capsule(
            *frame.to_pixels(
                np.array([[s * (spread + a), arm_y], [s * (spread + a + 0.45), arm_y]])
            ),
            rim * u * 0.8,
            rim * u * 0.6,
        )
        for s in (-1, 1)
    ]
    frame_cov = np.maximum(ring_cov, draw.fill_polygons(shape, [bridge, *arms]))
    lens_shade = lens_rgb * (0.85 + 0.3 * np.linspace(0, 1, shape[0])[:, None, None])
    return _layer(
        "sunglasses" if sunglasses else "glasses",
        shape,
        [(lens_cov * lens_alpha, lens_shade), (frame_cov, frame_rgb)],
    )


HAND_POSES = ("open", "flat", "fist", "point")


def hand(rng: np.random.Generator, frame: FaceFrame, shape: tuple[int, int], scale: float) -> Layer:
    """A skin-toned hand (palm, four fingers, thumb) in one of ``HAND_POSES``, shaded as a rounded body,
    entering the face from a random side."""
    u = frame.unit
    pose = HAND_POSES[rng.integers(len(HAND_POSES))]
    centre = _anchor(rng, frame, ["mouth", "nose", "cheek_a", "cheek_b", "eye_a", "eye_b"], 0.2)
    rot = rng.uniform(-np.pi, np.pi)  # direction the fingers point, image axes
    palm_a, palm_b = 0.42 * scale, 0.5 * scale
    colour = skin_colour(rng)
    light = _light_dir(rng)

    def local(points):
        return frame.to_pixels(centre + draw.rotate(np.asarray(points, np.float64), rot))

    spread = {"open": 0.35, "flat": 0.08, "fist": 0.05, "point": 0.08}[pose]
    pieces = []
    palm = draw.ellipse(local([[0, 0]])[0], (palm_a * u, palm_b * u), rot + frame.angle)
    palm_cov = draw.fill_polygons(shape, [palm])
    pieces.append(
        (palm_cov, colour * draw.dome_shading(palm_cov, 0.3 * u * scale, light)[..., None])
    )
    lengths = np.array([0.75, 0.85, 0.8, 0.62]) * scale * rng.uniform(0.9, 1.1)
    if pose == "fist":
        lengths = lengths * 0.25
    if pose == "point":
        lengths = lengths * np.array([0.25, 1.0, 0.25, 0.25])
    radius = 0.085 * scale * u
    for k, length in enumerate(lengths):
        offset = (k - 1.5) * (0.2 * scale)
        direction = (k - 1.5) * spread * 0.35
        base = np.array([offset, -palm_b * 0.75])
        tip = base + length * np.array([np.sin(direction), -np.cos(direction)])
        finger = draw.capsule(*local([base, tip]), radius, radius * 0.85)
        cov = draw.fill_polygons(shape, [finger])
        pieces.append((cov, colour * draw.dome_shading(cov, radius, light)[..., None]))
    thumb_base = np.array([-palm_a * 0.8, 0.0])
    thumb_tip = thumb_base + 0.5 * scale * np.array([-np.cos(spread + 0.4), -np.sin(spread + 0.4)])
    thumb = draw.capsule(*local([thumb_base, thumb_tip]), radius * 1.15, radius)
    cov = draw.fill_polygons(shape, [thumb])
    pieces.append((cov, colour * draw.dome_shading(cov, radius, light)[..., None]))
    # forearm leaving the palm away from the fingers
    arm = draw.capsule(
        *local([[0, palm_b * 0.5], [0, palm_b + 1.5]]), 0.3 * scale * u, 0.36 * scale * u
    )
    cov = draw.fill_polygons(shape, [arm])
    pieces.insert(0, (cov, colour * draw.dome_shading(cov, 0.3 * u * scale, light)[..., None]))
    return _layer("hand", shape, pieces)


def food(rng: np.random.Generator, frame: FaceFrame, shape: tuple[int, int], scale: float) -> Layer:
    """Food held at the mouth: a fruit (with highlight and stem), a sandwich (layers) or a doughnut."""
    u = frame.unit
    centre_px = frame.to_pixels(_anchor(rng, frame, ["mouth"], 0.3)[None])[0]
    light = _light_dir(rng)
    choice = rng.integers(3)
    if choice == 0:  # fruit
        r = rng.uniform(0.3, 0.45) * scale * u
        colours = np.array([[0.8, 0.1, 0.1], [0.5, 0.8, 0.2], [0.95, 0.55, 0.1], [0.95, 0.85, 0.2]])
        body = draw.star_blob(rng, centre_px, r, roughness=0.1)
        cov = draw.fill_polygons(shape, [body])
        shade = draw.dome_shading(cov, r, light)[..., None]
        high = draw.fill_polygons(
            shape, [draw.ellipse(centre_px - 0.4 * r * light, (0.18 * r, 0.12 * r))]
        )
        stem = draw.capsule(
            centre_px - [0, 0.9 * r], centre_px - [-0.1 * r, 1.3 * r], 0.06 * r, 0.05 * r
        )
        pieces = [
            (cov, colours[rng.integers(len(colours))] * shade),
            (high * cov * 0.7, np.ones(3)),
            (draw.fill_polygons(shape, [stem]), [0.3, 0.2, 0.1]),
        ]
        return _layer("food", shape, pieces)
    if choice == 1:  # sandwich: bread / filling / bread
        w, h = rng.uniform(0.5, 0.7) * scale * u, rng.uniform(0.12, 0.18) * scale * u
        angle = rng.uniform(-0.5, 0.5) + frame.angle
        fills = [
            [0.85, 0.65, 0.35],
            [0.3, 0.7, 0.2],
            [0.85, 0.2, 0.15],
            [0.9, 0.8, 0.4],
            [0.8, 0.6, 0.3],
        ]
        pieces = []
        for k, colour in enumerate(fills):
            dy = (k - 2) * h * 0.8
            offset = draw.rotate(np.array([[0.0, dy]]), angle)[0]
            thick = h * (1.0 if k in (0, 4) else 0.45)
            poly = draw.superellipse(centre_px + offset, (w, thick), 6.0, angle)
            cov = draw.fill_polygons(shape, [poly])
            pieces.append(
                (cov, np.asarray(colour) * draw.dome_shading(cov, thick, light)[..., None])
            )
        return _layer("food", shape, pieces)
    r = rng.uniform(0.3, 0.42) * scale * u  # doughnut
    outer = draw.fill_polygons(shape, [draw.ellipse(centre_px, (r, r * 0.9))])
    hole = draw.fill_polygons(shape, [draw.ellipse(centre_px, (r * 0.35, r * 0.3))])
    ring = np.clip(outer - hole, 0, 1)
    icing = np.clip(
        draw.fill_polygons(shape, [draw.star_blob(rng, centre_px, r * 0.8)]) - hole, 0, 1
    )
    icing_colour = rng.uniform(0.3, 1.0, 3)
    pieces = [
        (ring, np.array([0.8, 0.55, 0.25]) * draw.dome_shading(ring, r * 0.3, light)[..., None]),
        (icing * ring, icing_colour),
    ]
    return _layer("food", shape, pieces)


def cup(rng: np.random.Generator, frame: FaceFrame, shape: tuple[int, int], scale: float) -> Layer:
    """A mug or cup raised to the mouth: tapered body with cylindrical shading, rim and handle."""
    u = frame.unit
    top = frame.to_pixels(_anchor(rng, frame, ["mouth", "nose"], 0.25)[None])[0]
    angle = rng.uniform(-0.4, 0.4) + frame.angle
    w, h = rng.uniform(0.35, 0.5) * scale * u, rng.uniform(0.8, 1.2) * scale * u
    taper = rng.uniform(0.7, 1.0)
    body_local = np.array([[-w, 0], [w, 0], [w * taper, h], [-w * taper, h]])
    body = top + draw.rotate(body_local, angle)
    colour = rng.uniform(0.1, 0.95, 3)
    body_cov = draw.fill_polygons(shape, [body])
    # Cylinder shading across the cup: brightness follows cos of the position across the body.
    ys, xs = _pixel_centres(shape)
    across = draw.rotate(np.stack([xs - top[0], ys - top[1]], -1).reshape(-1, 2), -angle)[:, 0]
    shade = (0.55 + 0.5 * np.cos(np.clip(across / w, -1.2, 1.2) * 1.2 - 0.4)).reshape(shape)
    rim = draw.ellipse(top, (w, 0.12 * w), angle)
    side = rng.choice([-1.0, 1.0])
    handle_c = top + draw.rotate(np.array([[side * w * 1.05, 0.45 * h]]), angle)[0]
    handle_out = draw.fill_polygons(shape, [draw.ellipse(handle_c, (0.3 * w, 0.3 * h), angle)])
    handle_in = draw.fill_polygons(shape, [draw.ellipse(handle_c, (0.17 * w, 0.19 * h), angle)])
    handle = np.clip(handle_out - handle_in, 0, 1)
    pieces = [
        (handle, colour * 0.8),
        (body_cov, colour * shade[..., None]),
        (draw.fill_polygons(shape, [rim]), colour * 0.45),
    ]
    return _layer("cup", shape, pieces)


def phone(
    rng: np.random.Generator, frame: FaceFrame, shape: tuple[int, int], scale: float
) -> Layer:
    """A smartphone in front of the face or against the cheek: rounded body, dark screen with a glare."""
    u = frame.unit
    centre = frame.to_pixels(
        _anchor(rng, frame, ["cheek_a", "cheek_b", "mouth", "nose"], 0.3)[None]
    )[0]
    angle = rng.uniform(-0.8, 0.8) + frame.angle
    w, h = rng.uniform(0.32, 0.4) * scale * u, rng.uniform(0.65, 0.8) * scale * u
    body = draw.fill_polygons(shape, [draw.superellipse(centre, (w, h), 10.0, angle)])
    screen = draw.fill_polygons(
        shape, [draw.superellipse(centre, (w * 0.88, h * 0.9), 12.0, angle)]
    )
    ys, xs = _pixel_centres(shape)
    glare = np.clip(0.25 * np.sin(((xs - centre[0]) + (ys - centre[1])) / max(w, 1) * 1.5), 0, 1)
    body_rgb = rng.uniform(0.05, 0.8) * np.ones(3) + rng.uniform(-0.05, 0.05, 3)
    screen_rgb = np.stack([glare + 0.05, glare + 0.06, glare + 0.09], -1)
    return _layer("phone", shape, [(body, body_rgb), (screen, screen_rgb)])


def microphone(
    rng: np.random.Generator, frame: FaceFrame, shape: tuple[int, int], scale: float
) -> Layer:
    """A hand-held microphone below the mouth: tapered dark handle and a mesh-grille ball head."""
    u = frame.unit
    head_c = frame.to_pixels(_anchor(rng, frame, ["mouth", "chin"], 0.2)[None])[0]
    angle = rng.uniform(-0.6, 0.6) + frame.angle
    r = rng.uniform(0.24, 0.32) * scale * u
    down = draw.rotate(np.array([[0.0, 1.0]]), angle)[0]
    handle = draw.capsule(head_c + down * r * 0.8, head_c + down * r * 6, r * 0.45, r * 0.3)
    head = draw.fill_polygons(shape, [draw.ellipse(head_c, (r, r * 1.1), angle)])
    light = _light_dir(rng)
    ys, xs = _pixel_centres(shape)
    period = max(r / 3.0, 1.5)
    grid = 0.8 + 0.2 * (np.sin(xs / period * np.pi) * np.sin(ys / period * np.pi) > 0)
    grey = rng.uniform(0.45, 0.8)
    handle_cov = draw.fill_polygons(shape, [handle])
    pieces = [
        (
            handle_cov,
            rng.uniform(0.02, 0.2) * draw.dome_shading(handle_cov, r * 0.4, light)[..., None],
        ),
        (head, (grey * grid * draw.dome_shading(head, r, light))[..., None] * np.ones(3)),
    ]
    return _layer("microphone", shape, pieces)


def medical_mask(
    rng: np.random.Generator, frame: FaceFrame, shape: tuple[int, int], scale: float
) -> Layer:
    """A surgical / cloth face mask from the nose bridge to under the chin, with pleats and ear straps."""
    u = frame.unit
    nose_y, chin_y = frame.point("nose")[1], frame.point("chin")[1]
    bottom = chin_y + rng.uniform(-0.1, 0.15)
    # At scale 1 the top edge sits on the nose bridge; the scale stretches the mask up from the chin.
    top = bottom - (bottom - nose_y + rng.uniform(0.2, 0.45)) * scale
    half = rng.uniform(0.85, 1.05) * np.sqrt(scale)
    t = np.linspace(0, 1, 12)
    top_edge = np.stack(
        [np.linspace(-half, half, 12), top + 0.12 * np.abs(np.linspace(-1, 1, 12))], 1
    )
    bottom_edge = np.stack(
        [np.linspace(half * 0.85, -half * 0.85, 12), bottom - 0.35 * (2 * t - 1) ** 2 + 0.0], 1
    )
    poly = frame.to_pixels(np.concatenate([top_edge, bottom_edge]))
    cov = draw.fill_polygons(shape, [poly])
    colours = np.array([[0.62, 0.8, 0.92], [0.95, 0.95, 0.95], [0.1, 0.1, 0.12], [0.95, 0.75, 0.8]])
    colour = colours[rng.integers(len(colours))] * rng.uniform(0.9, 1.05)
    # Pleats: darker bands across the mask in face-frame coordinates.
    ys, xs = _pixel_centres(shape)
    local = frame.to_local(np.stack([xs, ys], -1).reshape(-1, 2)).reshape(shape + (2,))
    band = (local[..., 1] - top) / max(bottom - top, 1e-3)
    pleats = 0.88 + 0.12 * np.cos(band * 2 * np.pi * 3.5) ** 2
    straps = [
        frame.to_pixels(np.array([[s * half, y], [s * (half + 0.45), y - 0.15]]))
        for s in (-1, 1)
        for y in (top + 0.1, bottom - 0.3)
    ]
    strap_cov = np.maximum.reduce([draw.stroke_polyline(shape, p, 0.03 * u) for p in straps])
    return _layer(
        "medical_mask", shape, [(strap_cov, colour * 0.95), (cov, colour * pleats[..., None])]
    )


def hair_strands(
    rng: np.random.Generator, frame: FaceFrame, shape: tuple[int, int], scale: float
) -> Layer:
    """Strands of hair falling from the forehead over the face: thin curved strokes of one hair colour."""
    u = frame.unit
    n = int(np.clip(rng.integers(6, 30) * scale, 2, 80))
    base = HAIR_TONES[rng.integers(len(HAIR_TONES))]
    centre_x = rng.uniform(-0.6, 0.6)
    pieces = []
    for _ in range(n):
        x0 = centre_x + rng.normal(0, 0.35)
        length = rng.uniform(0.8, 1.8) * scale
        sway = rng.normal(0, 0.35)
        ctrl = np.array(
            [
                [x0, -1.1],
                [x0 + sway, -1.1 + length * 0.4],
                [x0 - sway * 0.5, -1.1 + length * 0.7],
                [x0 + sway * 0.7 + rng.normal(0, 0.1), -1.1 + length],
            ]
        )
        thick = max(1.0, rng.uniform(0.008, 0.03) * u)
        cov = draw.stroke_polyline(shape, frame.to_pixels(draw.bezier(ctrl)), thick)
        pieces.append((cov, np.clip(base * rng.uniform(0.8, 1.3), 0, 1)))
    return _layer("hair", shape, pieces)


@functools.cache
def _cutout_sources() -> tuple[tuple[np.ndarray, np.ndarray | None], ...]:
    """(texture float RGB, optional alpha) pairs from images that scikit-image ships, none a face."""

    def rgb(img):
        return np.asarray(img, np.float32)[..., :3] / 255.0

    logo = skimage_data.logo()
    horse = 1.0 - skimage_data.horse().astype(np.float32)  # horse is True on background
    chelsea = rgb(skimage_data.chelsea())
    return (
        (rgb(skimage_data.coffee()), None),
        (chelsea, None),
        (rgb(skimage_data.rocket()), None),
        (rgb(skimage_data.astronaut())[300:, 280:], None),  # suit, flag and helmet region: no face
        (rgb(skimage_data.hubble_deep_field()), None),
        (rgb(logo), logo[..., 3].astype(np.float32) / 255.0),
        (rgb(skimage_data.coffee())[:328, :400], horse),
    )


def photo_cutout(
    rng: np.random.Generator, frame: FaceFrame, shape: tuple[int, int], scale: float
) -> Layer:
    """An arbitrary object cut from a real photo (scikit-image's bundled images, never faces): a random
    blob, or a shipped silhouette (the horse, the logo's alpha), placed over the face."""
    sources = _cutout_sources()
    texture, silhouette = sources[rng.integers(len(sources))]
    u = frame.unit
    radius = rng.uniform(0.45, 0.7) * scale * u
    centre = frame.to_pixels(_anchor(rng, frame, list(CANONICAL), 0.3)[None])[0]
    size = max(int(np.ceil(2 * radius)), 4)
    # Crop a random square of the source, resize it to the object's size.
    h, w = texture.shape[:2]
    crop = int(rng.uniform(0.3, 0.9) * min(h, w))
    if silhouette is not None:
        crop = min(h, w)
    y0, x0 = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
    tex = cv2.resize(
        texture[y0 : y0 + crop, x0 : x0 + crop], (size, size), interpolation=cv2.INTER_AREA
    )
    if silhouette is not None:
        sil = cv2.resize(silhouette[y0 : y0 + crop, x0 : x0 + crop], (size, size), cv2.INTER_AREA)
    else:
        sil = draw.fill_polygons(
            (size, size), [draw.star_blob(rng, (size / 2, size / 2), size * 0.38)]
        )
    # Paste the patch at ``centre`` (clipped to the image).
    alpha = np.zeros(shape, np.float32)
    rgb = np.zeros(shape + (3,), np.float32)
    top, left = int(round(centre[1] - size / 2)), int(round(centre[0] - size / 2))
    ys, xs = (
        slice(max(top, 0), min(top + size, shape[0])),
        slice(max(left, 0), min(left + size, shape[1])),
    )
    if ys.start < ys.stop and xs.start < xs.stop:
        py, px = slice(ys.start - top, ys.stop - top), slice(xs.start - left, xs.stop - left)
        alpha[ys, xs] = sil[py, px]
        rgb[ys, xs] = tex[py, px]
    return Layer(rgb=rgb, alpha=alpha, kind="cutout")


OccluderFn = Callable[[np.random.Generator, FaceFrame, tuple[int, int], float], Layer]

OCCLUDERS: dict[str, OccluderFn] = {
    "glasses": functools.partial(glasses, sunglasses=False),
    "sunglasses": functools.partial(glasses, sunglasses=True),
    "hand": hand,
    "food": food,
    "cup": cup,
    "phone": phone,
    "microphone": microphone,
    "medical_mask": medical_mask,
    "hair": hair_strands,
    "cutout": photo_cutout,
}


# Scale range per kind that still looks like the object (spectacles 2.5 times too large do not);
# coverage control stops at these limits.
SCALE_LIMITS: dict[str, tuple[float, float]] = {
    "glasses": (0.85, 1.3),
    "sunglasses": (0.85, 1.5),
    "medical_mask": (0.6, 1.4),
}
DEFAULT_SCALE_LIMITS = (0.3, 2.5)

# ----------------------------------------------------------------------------------------- compositing


def composite(image: np.ndarray, layers: Sequence[Layer]) -> tuple[np.ndarray, np.ndarray]:
    """Layers over ``image`` (H, W, 3), in order ("over" operator); returns (image, combined alpha)."""
    out = np.asarray(image, np.float32).copy()
    alpha = np.zeros(out.shape[:2], np.float32)
    for layer in layers:
        a = layer.alpha[..., None]
        out = out * (1 - a) + layer.rgb * a
        alpha = alpha * (1 - layer.alpha) + layer.alpha
    return out, alpha


def occlusion_mask(alpha: np.ndarray, face_region: np.ndarray) -> np.ndarray:
    """Binary float32 mask (H, W): 1 where the occluder alpha >= ``MASK_ALPHA_THRESHOLD`` over the face."""
    return ((alpha >= MASK_ALPHA_THRESHOLD) & (np.asarray(face_region) > 0.5)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class OcclusionConfig:
    """How to occlude: which occluder kinds (uniformly), how many, and the face fraction to cover.

    ``coverage`` (lo, hi): the fraction of face-region pixels the mask should cover; the scale of all
    occluders is adjusted (same shapes, same seeds) until the coverage falls inside, for up to
    ``max_rescales`` rounds (the closest try is kept otherwise), within each kind's ``SCALE_LIMITS``
    (so thin occluders such as clear spectacles may stay below ``lo``). ``p_clean`` is the probability of a
    sample without any occluder.
    """

    kinds: tuple[str, ...] = tuple(OCCLUDERS)
    count: tuple[int, int] = (1, 2)
    coverage: tuple[float, float] = (0.1, 0.45)
    p_clean: float = 0.0
    max_rescales: int = 5

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(OCCLUDERS)
        if unknown:
            raise ValueError(
                f"unknown occluder kinds {sorted(unknown)}; known: {sorted(OCCLUDERS)}"
            )


@dataclasses.dataclass(frozen=True)
class Occlusion:
    """The result of :func:`occlude`: ``occluded`` image, occluder ``alpha``, binary ``mask`` over the
    face, the ``kinds`` used and the achieved ``coverage`` (mask pixels / face pixels)."""

    occluded: np.ndarray
    alpha: np.ndarray
    mask: np.ndarray
    kinds: tuple[str, ...]
    coverage: float


def occlude(
    clean: np.ndarray,
    face_region: np.ndarray,
    frame: FaceFrame,
    rng: np.random.Generator,
    config: OcclusionConfig = OcclusionConfig(),
) -> Occlusion:
    """Occluders drawn with ``rng`` composited over ``clean`` (H, W, 3); see :class:`OcclusionConfig`."""
    shape = clean.shape[:2]
    face_pixels = max(float((np.asarray(face_region) > 0.5).sum()), 1.0)
    if rng.uniform() < config.p_clean:
        zeros = np.zeros(shape, np.float32)
        return Occlusion(np.asarray(clean, np.float32).copy(), zeros, zeros, (), 0.0)
    count = int(rng.integers(config.count[0], config.count[1] + 1))
    kinds = tuple(config.kinds[i] for i in rng.integers(len(config.kinds), size=count))
    seeds = rng.integers(0, 2**63, size=count)
    lo, hi = config.coverage
    target = rng.uniform(lo, hi)
    scale, best = float(rng.uniform(0.8, 1.2)), None
    for _ in range(config.max_rescales + 1):
        layers = [
            OCCLUDERS[k](
                np.random.default_rng(int(s)),
                frame,
                shape,
                float(np.clip(scale, *SCALE_LIMITS.get(k, DEFAULT_SCALE_LIMITS))),
            )
            for k, s in zip(kinds, seeds, strict=True)
        ]
        occluded, alpha = composite(clean, layers)
        mask = occlusion_mask(alpha, face_region)
        coverage = float(mask.sum()) / face_pixels
        if best is None or abs(coverage - target) < abs(best.coverage - target):
            best = Occlusion(occluded, alpha, mask, kinds, coverage)
        if lo <= coverage <= hi:
            break
        ratio = np.sqrt(target / max(coverage, 1e-3))
        scale = float(np.clip(scale * np.clip(ratio, 0.5, 2.0), *DEFAULT_SCALE_LIMITS))
    return best
