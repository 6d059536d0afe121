"""The one image reader: any image file to an upright 8-bit RGB picture, for every path that looks at pixels.

Training crops, the statistics, the bad-image scan, evaluation and prediction all decode through `to_rgb`, so
one file gives the same pixels everywhere: EXIF orientation applied, 16-bit and float images scaled (not
clipped), transparency composited on white, greyscale/palette/CMYK converted. Errors of any kind (truncated
data, a decompression bomb, a dangling symlink) become one `UnreadableImage` (an OSError) with a short reason.
"""

import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepconv_cli.files import reason

HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height
EXIF_ORIENTATION = 0x0112


class UnreadableImage(OSError):
    """A file that does not decode as an image; `str()` is a one-line reason that names no library internals."""


def why_unreadable(path: str | Path, e: BaseException) -> str:
    """A short phrase saying why `path` could not be decoded (used by the scan, stats, evaluate and predict)."""
    if isinstance(e, UnreadableImage):
        return str(e)
    if isinstance(e, OSError) and e.errno == errno.ELOOP:
        return "symlink loop (the link points back to itself)"
    if isinstance(e, FileNotFoundError) and os.path.islink(path):
        return f"dangling symlink (points to {os.readlink(path)}, which does not exist)"
    if isinstance(e, Image.DecompressionBombError):
        return f"image too large to decode safely ({' '.join(str(e).split())[:120]})"
    if isinstance(e, UnidentifiedImageError):
        return "not an image (PIL cannot identify it)"
    detail = " ".join(str(e).split())[:160]
    return f"cannot decode: {type(e).__name__}" + (f": {detail}" if detail else "")


READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, Image.DecompressionBombError)


def open_lazily(path: str | Path) -> Image.Image:
    """Open without decoding (so a JPEG can still be drafted at reduced size); errors -> `UnreadableImage`."""
    try:
        if os.path.getsize(path) == 0:
            raise UnreadableImage("empty file (0 bytes)")
        return Image.open(path)
    except READ_ERRORS as e:
        raise UnreadableImage(why_unreadable(path, e)) from None


def orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright, also when there is none)."""
    try:
        return int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except (ValueError, TypeError, SyntaxError, OSError):
        return 1


def oriented_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the picture as `to_rgb` will return it (EXIF rotations by 90 degrees swap them)."""
    w, h = img.size
    return (h, w) if orientation(img) in ROTATED else (w, h)


def to_rgb(img: Image.Image) -> Image.Image:
    """An 8-bit RGB picture of any PIL image, upright: EXIF orientation applied, 16-bit and float images scaled
    (not clipped), transparency composited on white, greyscale/palette/CMYK converted."""
    img = ImageOps.exif_transpose(img)
    if img.mode in HIGH_DEPTH:
        values = np.asarray(img, dtype=np.float32)
        peak = float(values.max(initial=0))
        top = 65535.0 if img.mode.startswith("I;16") or 255 < peak <= 65535 else max(255.0, peak)
        img = Image.fromarray(np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8))
    if img.mode in ALPHA or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("RGB")


def decode_rgb(img: Image.Image, reduce: int = 1) -> Image.Image:
    """`to_rgb` of a lazily opened image, a JPEG decoded at 1/`reduce` size in the DCT (reduce = 1, 2, 4, 8)."""
    if reduce > 1 and img.format == "JPEG":
        w, h = img.size
        img.draft("RGB", (-(-w // reduce), -(-h // reduce)))
    try:
        return to_rgb(img)
    except READ_ERRORS as e:
        raise UnreadableImage(why_unreadable(getattr(img, "filename", "") or "", e)) from None


def open_rgb(path: str | Path) -> Image.Image:
    """The fully decoded RGB picture of an image file; raises `UnreadableImage` when it is not a readable image."""
    with open_lazily(path) as img:
        return decode_rgb(img)


def readable_images(paths: Iterable[Path], unreadable: list[str]) -> Iterator[tuple[Path, Image.Image]]:
    """(path, RGB picture) for each file that decodes; "PATH (reason)" appended to `unreadable` for the others."""
    for path in paths:
        try:
            img = open_rgb(path)
        except OSError as e:  # UnreadableImage, or a file that vanished or cannot be opened
            unreadable.append(f"{path} ({reason(e, 80)})")
            continue
        yield path, img
