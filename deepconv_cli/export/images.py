"""The photos a user hands to `predict`: files and folders to image paths, any image file to an RGB picture.

Greyscale, palette, CMYK, 16-bit and transparent images all become 8-bit RGB (transparent areas composited on
white); the camera's EXIF orientation is applied, so a portrait photo is classified upright.
"""

import os
from pathlib import Path

from PIL import Image

from deepconv_cli.data.folder import IMAGE_EXTENSIONS, to_rgb
from deepconv_cli.errors import usage


def collect_images(paths: list[str]) -> list[Path]:
    """Files as given, folders searched recursively (hidden entries skipped) for image extensions, sorted."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise usage(f"no such file or folder: {path}")
        if path.is_file():
            found.append(path)
            continue
        images = _images_under(path)
        if not images:
            raise usage(f"folder {path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        found += images
    return list(dict.fromkeys(found))


def _images_under(folder: Path) -> list[Path]:
    images = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        images += [Path(root) / f for f in files if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(images)


def open_rgb(path: Path) -> Image.Image:
    """The decoded RGB picture; raises OSError (or PIL's errors) for files that are not readable images."""
    with Image.open(path) as img:
        img.load()
        return to_rgb(img)
