"""ImageFolder trees as the paper's pipeline reads them: hidden folders and files are skipped, images open lazily."""

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from torchvision.datasets import ImageFolder

from deepconv_cli.errors import usage

HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def open_lazily(path: str) -> Image.Image:
    """Open without decoding, so the transform can ask the JPEG decoder for a reduced size (draft mode)."""
    return Image.open(path)


def to_rgb(img: Image.Image) -> Image.Image:
    """An 8-bit RGB picture of any PIL image, upright: EXIF orientation applied, 16-bit and float images scaled
    (not clipped), transparency composited on white, greyscale/palette/CMYK converted. `evaluate` and `predict`
    both see images through it, so the same file scores the same in both."""
    img = ImageOps.exif_transpose(img)
    if img.mode in HIGH_DEPTH:
        values = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") else max(255.0, float(values.max()))
        img = Image.fromarray(np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8))
    if img.mode in ALPHA or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("RGB")


def find_classes(directory: str | Path) -> tuple[list[str], dict[str, int]]:
    """Sorted sub-folder names, hidden ones (.ipynb_checkpoints, .git ...) excluded."""
    names = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
    return names, {name: i for i, name in enumerate(names)}


def is_image_file(path: str, root: str | Path) -> bool:
    """An image extension, and no hidden part below `root` (.ipynb_checkpoints/, macOS ._name files ...)."""
    parts = Path(os.path.relpath(path, os.path.expanduser(root))).parts
    return path.lower().endswith(IMAGE_EXTENSIONS) and not any(part.startswith(".") for part in parts)


class ImageTree(ImageFolder):
    """torchvision's ImageFolder: `find_classes` above, hidden files skipped, lazy loading, empty classes allowed."""

    def __init__(self, root: str | Path, transform=None) -> None:
        super().__init__(
            str(root),
            transform=transform,
            loader=open_lazily,
            is_valid_file=lambda path: is_image_file(path, root),
            allow_empty=True,
        )

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return find_classes(directory)

    def drop(self, paths: set[str]) -> None:
        """Forget the samples whose file is in `paths` (images the pre-scan found unreadable)."""
        self.samples = [s for s in self.samples if s[0] not in paths]
        self.imgs = self.samples
        self.targets = [target for _, target in self.samples]

    def empty_classes(self) -> list[str]:
        """Class folders holding no (usable) image."""
        present = set(self.targets)
        return [name for name, index in self.class_to_idx.items() if index not in present]


def check_tree(root: Path, what: str) -> list[str]:
    """The class names of an ImageFolder tree, or a one-line usage error saying what is wrong with it."""
    if not root.exists():
        raise usage(f"{what} folder not found: {root}")
    if not root.is_dir():
        raise usage(f"{what} path is not a folder: {root}")
    classes, _ = find_classes(root)
    if not classes:
        raise usage(f"{what} folder {root} has no class sub-folders (expected {root}/<class>/<image>)")
    return classes
