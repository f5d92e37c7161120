"""Fixtures of the data tests: tiny photos with a synthetic face, written in the layouts loaders read."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from occface_jax.data.celebamask import part_path


def synthetic_face_photo(size: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 RGB drawing of a face (skin ellipse, eyes, mouth) and 68 landmark-like points (x, y px)
    laid out in iBUG order (jaw, brows, nose, eyes, mouth), good enough to place occluders."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), rng.integers(30, 90, 3), np.uint8)
    c = size / 2
    cv2.ellipse(
        img,
        (int(c), int(c * 1.05)),
        (int(size * 0.3), int(size * 0.38)),
        0,
        0,
        360,
        (220, 180, 150),
        -1,
    )
    s = size / 96
    jaw_t = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    jaw = np.stack([c + 28 * s * np.cos(jaw_t), c + 5 * s + 34 * s * np.sin(jaw_t)], 1)
    brows = np.stack([c + np.linspace(-22, 22, 10) * s, np.full(10, c - 16 * s)], 1)
    nose = np.stack([np.full(9, c), c + np.linspace(-10, 6, 9) * s], 1)
    eye_a = np.stack(
        [
            c - 14 * s + 5 * s * np.cos(np.arange(6) * np.pi / 3),
            c - 8 * s + 2 * s * np.sin(np.arange(6) * np.pi / 3),
        ],
        1,
    )
    eye_b = eye_a + [28 * s, 0]
    mouth_t = np.arange(20) * 2 * np.pi / 20
    mouth = np.stack([c + 10 * s * np.cos(mouth_t), c + 16 * s + 4 * s * np.sin(mouth_t)], 1)
    landmarks = np.concatenate([jaw, brows, nose, eye_a, eye_b, mouth]).astype(np.float32)
    for e in (eye_a, eye_b):
        cv2.fillPoly(img, [np.round(e - 0.5).astype(np.int32)], (40, 30, 30))
    cv2.fillPoly(img, [np.round(mouth - 0.5).astype(np.int32)], (150, 50, 60))
    return img, landmarks


def write_pts(path: Path, points: np.ndarray) -> None:
    """iBUG .pts (1-based pixel indices: x + 0.5 of the project's centre convention)."""
    lines = ["version: 1", f"n_points: {len(points)}", "{"]
    lines += [f"{x + 0.5:.3f} {y + 0.5:.3f}" for x, y in points]
    path.write_text("\n".join(lines + ["}"]) + "\n")


def write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture
def face_folder(tmp_path: Path) -> Path:
    """6 face photos (4 with .pts landmarks, in a sub-folder too), one corrupt .jpg."""
    root = tmp_path / "faces"
    for i in range(6):
        img, lm = synthetic_face_photo(96, seed=i)
        path = root / ("sub" if i % 2 else "") / f"face_{i}.png"
        write_image(path, img)
        if i < 4:
            write_pts(path.with_suffix(".pts"), lm)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@pytest.fixture(scope="session")
def make_face_photo():
    """The :func:`synthetic_face_photo` drawing function (size, seed) -> (uint8 image, landmarks)."""
    return synthetic_face_photo


def write_celebamask(root: Path, ids: list[int]) -> dict:
    """CelebAMask-HQ layout: images 64 px (the real ones are 1024), masks 32 px (real: 512), like the release: the masks are
    half the image resolution. Part rectangles: skin, hair, eyeglasses, hat."""
    (root / "CelebA-HQ-img").mkdir(parents=True)
    parts = {
        "skin": (8, 8, 24, 28),
        "nose": (14, 14, 18, 20),
        "hair": (4, 0, 28, 8),
        "eye_g": (8, 10, 24, 14),
        "hat": (0, 0, 32, 3),
        "cloth": (0, 28, 32, 32),
    }
    for image_id in ids:
        img = np.random.default_rng(image_id).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "CelebA-HQ-img" / f"{image_id}.jpg"), img)
        for part, (x0, y0, x1, y1) in parts.items():
            mask = np.zeros((32, 32), np.uint8)
            mask[y0:y1, x0:x1] = 255
            path = part_path(root, image_id, part)
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), mask)
    return parts


@pytest.fixture(scope="session")
def make_celebamask():
    """:func:`write_celebamask` (root, ids) -> the part rectangles it drew."""
    return write_celebamask
