"""Reading and writing photos with checks: every bad input becomes one clear ImageError line.

``load_image`` returns float32 RGB in [0, 1], (H, W, 3), top-left origin, with EXIF orientation
applied. Grayscale is replicated to RGB, alpha is composited over white, 16-bit and float images are
scaled to [0, 1]. Images smaller than ``MIN_SIDE`` pixels are refused; larger than ``MAX_SIDE`` are
downscaled (area filter) so their longer side is ``MAX_SIDE``, and the scale is reported. A JPEG is
decoded at a reduced size (1/2, 1/4 or 1/8, libjpeg's DCT scaling via Pillow's draft mode) when that
still covers ``MAX_SIDE``; a photo whose decoded size would exceed ``MAX_DECODE_PIXELS`` is refused
(one line) before any pixel is decoded.

``find_inputs`` expands files, folders and glob patterns into one ``Found`` per entry: a candidate
image, or a file skipped as not an image (with why), or an input that names nothing.
"""

from __future__ import annotations

import dataclasses
import glob
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from occface_jax.errors import OccfaceError

MIN_SIDE = 64
ORIENTATION_TAG = 0x0112  # EXIF
MAX_SIDE = 8000
# The most pixels decoded at once (after any JPEG draft reduction): 16384 x 16384, 0.8 GB as 8-bit
# RGB, plus the float32 copy at MAX_SIDE (0.77 GB). Pillow's own bomb limit (89 MP) would refuse a
# 10000 x 10000 photo the README promises to downscale, so it is replaced by this bound.
MAX_DECODE_PIXELS = 16384 * 16384
IMAGE_SUFFIXES = (
    *(".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".pnm"),
    *(".tif", ".tiff", ".webp", ".gif"),
)


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


def _open_within_bound(
    path: Path, max_side: int, max_pixels: int
) -> tuple[Image.Image, tuple[int, int]]:
    """Open ``path`` (header only), in JPEG draft mode when a reduced decode still covers
    ``max_side``; ImageError when the decoded size would exceed ``max_pixels``. Returns the image
    and the file's (width, height) after EXIF orientation."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our own bound below (Pillow's global; restored at once)
    try:
        img = Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    width, height = img.size
    swapped = img.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8)  # a quarter turn
    if img.format == "JPEG" and max(width, height) > max_side:
        factor = max_side / max(width, height)  # the largest DCT reduction still >= this
        img.draft(img.mode, (max(1, round(width * factor)), max(1, round(height * factor))))
    if img.size[0] * img.size[1] > max_pixels:
        img.close()
        raise ImageError(
            f"{path}: {width}x{height} pixels is above the memory-safe bound of "
            f"{max_pixels / 1e6:.0f} megapixels decoded at once; downscale it first"
        )
    return img, ((height, width) if swapped else (width, height))


def load_image(
    path: str | Path,
    max_side: int = MAX_SIDE,
    min_side: int = MIN_SIDE,
    max_pixels: int = MAX_DECODE_PIXELS,
) -> LoadedImage:
    """Load ``path`` as RGB float32 [0, 1]; ImageError for a missing, non-image, truncated, tiny
    or too large (``max_pixels`` decoded) file. ``original_size`` is the file's size after EXIF
    orientation, ``scale`` the loaded size over it."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        opened, (file_width, file_height) = _open_within_bound(path, max_side, max_pixels)
        with opened:
            img = ImageOps.exif_transpose(opened)
            img.load()
    except UnidentifiedImageError as err:
        raise ImageError(f"{path}: not an image (or a format Pillow cannot read)") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: corrupt or truncated image ({err})") from err
    if min(file_width, file_height) < min_side:
        raise ImageError(
            f"{path}: {file_width}x{file_height} pixels is too small (need at least {min_side})"
        )
    width, height = img.size
    if max(width, height) > max_side:
        factor = max_side / max(width, height)
        if img.mode not in ("RGB", "RGBA", "L", "I", "F", "I;16"):
            img = img.convert("RGBA" if _has_alpha(img) else "RGB")
        img = img.resize((round(width * factor), round(height * factor)), Image.Resampling.BOX)
    scale = img.size[0] / file_width
    return LoadedImage(_to_float_rgb(img), path, (file_height, file_width), scale)


def _has_alpha(img: Image.Image) -> bool:
    return "A" in img.mode or (img.mode == "P" and "transparency" in img.info)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] (H, W[, C]) -> uint8, rounded and clipped."""
    return np.clip(np.rint(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)


#: zlib level of the PNGs written: 1 encodes a 1920 x 1080 photo in ~130 ms instead of ~500 ms
#: (PIL's default 6) for ~8 % more bytes; ``occface reconstruct`` writes four or five per face.
PNG_COMPRESS_LEVEL = 1


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write a float [0, 1] or uint8 image (H, W), (H, W, 3) or (H, W, 4) as PNG/JPEG by suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = to_uint8(arr)
    options = {"compress_level": PNG_COMPRESS_LEVEL} if path.suffix.lower() == ".png" else {}
    Image.fromarray(arr).save(path, **options)
    return path


@dataclasses.dataclass(frozen=True)
class Found:
    """One entry of the inputs: ``path`` is an image to try (``reason`` empty), a file or folder
    skipped as not an image (``skipped``, with ``reason``), or ``path`` None: ``given`` names
    nothing (``reason`` says so)."""

    given: str  # the input as given (a file, folder or pattern)
    path: Path | None
    reason: str = ""
    skipped: bool = False


def looks_like_image(path: Path) -> bool:
    """An image suffix, or a header Pillow identifies (reads a few bytes, decodes nothing)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with Image.open(path):
                return True
        finally:
            Image.MAX_IMAGE_PIXELS = previous
    except (OSError, SyntaxError, ValueError):  # UnidentifiedImageError is an OSError
        return False


def _folder_entry(given: str, q: Path) -> Found:
    if q.is_dir():
        return Found(given, q, "a folder (not searched: name it to include it)", skipped=True)
    if not q.is_file():
        return Found(given, q, "not a regular file", skipped=True)
    if looks_like_image(q):
        return Found(given, q)
    return Found(given, q, "not an image", skipped=True)


def find_inputs(inputs: list[str], exclude: tuple[Path, ...] = ()) -> list[Found]:
    """Every entry named by ``inputs``, in order: a file as given (tried whatever its suffix), a
    folder's entries sorted (images to try, everything else skipped with its reason; sub-folders
    are not searched), a glob pattern's matches sorted the same way. The same file reached twice
    counts once; folders in ``exclude`` (resolved) are left out (an output folder inside an
    input folder)."""
    found: list[Found] = []
    excluded = {p.resolve() for p in exclude}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            entries = sorted(p.iterdir())
        elif p.exists():
            found.append(Found(item, p))
            continue
        else:
            entries = sorted(Path(m) for m in glob.glob(item))
            if not entries:
                found.append(Found(item, None, "no such file, folder or pattern"))
        found.extend(_folder_entry(item, q) for q in entries if q.resolve() not in excluded)
    seen: set[Path] = set()
    unique = []
    for f in found:
        key = f.path.resolve() if f.path is not None else None
        if key is None or key not in seen:
            unique.append(f)
            if key is not None:
                seen.add(key)
    return unique


def find_images(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Images to try among ``inputs`` (see ``find_inputs``) and the problems, (input, why): an
    input naming nothing, or a folder holding no images."""
    found = find_inputs(inputs)
    paths = [f.path for f in found if f.path is not None and not f.skipped]
    problems = [(f.given, f.reason) for f in found if f.path is None]
    for item in dict.fromkeys(f.given for f in found):
        if Path(item).is_dir() and not any(f.given == item and not f.skipped for f in found):
            problems.append((item, "folder holds no images"))
    return paths, problems
