"""Reading and writing photos with checks: every bad input becomes one clear ImageError line.

``load_image`` returns float32 RGB in [0, 1], (H, W, 3), top-left origin, with EXIF orientation
applied. Grayscale is replicated to RGB, alpha is composited over white, 16-bit and float images are
scaled to [0, 1]. Images smaller than ``MIN_SIDE`` pixels are refused; larger than ``MAX_SIDE`` are
downscaled (area filter) so their longer side is ``MAX_SIDE``, and the scale is reported.
"""

from __future__ import annotations

import dataclasses
import glob
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from occface_jax.errors import OccfaceError

MIN_SIDE = 64
MAX_SIDE = 8000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class ImageError(OccfaceError):
    """An input that is not a usable image."""


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    """A photo as float32 RGB in [0, 1] (H, W, 3); ``scale`` = loaded size / file size (<= 1)."""

    pixels: np.ndarray
    path: Path
    original_size: tuple[int, int]  # (height, width) in the file
    scale: float = 1.0


def _to_float_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        gray = np.clip(arr / peak, 0, 1)
        return np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
    if mode == "F":
        arr = np.asarray(img, np.float64)
        gray = np.clip(arr / (arr.max() if arr.max() > 1 else 1.0), 0, 1)
        return np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), np.float32) / 255.0
        alpha = rgba[..., 3:]
        return rgba[..., :3] * alpha + (1.0 - alpha)  # over white
    return np.asarray(img.convert("RGB"), np.float32) / 255.0


def load_image(path: str | Path, max_side: int = MAX_SIDE, min_side: int = MIN_SIDE) -> LoadedImage:
    """Load ``path`` as RGB float32 [0, 1]; ImageError for a missing, non-image, truncated or tiny file."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)
                img.load()
    except UnidentifiedImageError as err:
        raise ImageError(f"{path}: not an image (or a format Pillow cannot read)") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: corrupt or truncated image ({err})") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{path}: image too large to decode safely ({err})") from err
    width, height = img.size
    if min(width, height) < min_side:
        raise ImageError(f"{path}: {width}x{height} pixels is too small (need at least {min_side})")
    scale = 1.0
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
        img = (
            img.convert("RGBA" if "A" in img.mode else "RGB")
            if img.mode not in ("RGB", "RGBA")
            else img
        )
        img = img.resize((round(width * scale), round(height * scale)), Image.Resampling.BOX)
    return LoadedImage(_to_float_rgb(img), path, (height, width), scale)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] (H, W[, C]) -> uint8, rounded and clipped."""
    return np.clip(np.rint(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write a float [0, 1] or uint8 image (H, W), (H, W, 3) or (H, W, 4) as PNG/JPEG by suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = to_uint8(arr)
    Image.fromarray(arr).save(path)
    return path


def find_images(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files, folders (their image files, sorted) and glob patterns.

    Returns (paths, problems); a problem is (the input as given, what is wrong with it)."""

    paths: list[Path] = []
    problems: list[tuple[str, str]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append((item, "folder holds no images"))
            paths.extend(found)
        elif p.exists():
            paths.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item))
            if not matches:
                problems.append((item, "no such file, folder or pattern"))
            paths.extend(m for m in matches if m.is_file())
    seen: set[Path] = set()
    unique = [p for p in paths if not (p.resolve() in seen or seen.add(p.resolve()))]
    return unique, problems
