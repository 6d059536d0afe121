"""ImageFolder trees as the paper's pipeline reads them: hidden folders are never classes, images open lazily."""

import os
from pathlib import Path

from PIL import Image
from torchvision.datasets import ImageFolder

from deepconv_cli.errors import usage

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def open_lazily(path: str) -> Image.Image:
    """Open without decoding, so the transform can ask the JPEG decoder for a reduced size (draft mode)."""
    return Image.open(path)


def find_classes(directory: str | Path) -> tuple[list[str], dict[str, int]]:
    """Sorted sub-folder names, hidden ones (.ipynb_checkpoints, .git ...) excluded."""
    names = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))
    return names, {name: i for i, name in enumerate(names)}


class ImageTree(ImageFolder):
    """torchvision's ImageFolder with `find_classes` above and lazy loading; empty class folders allowed."""

    def __init__(self, root: str | Path, transform=None) -> None:
        super().__init__(str(root), transform=transform, loader=open_lazily, allow_empty=True)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return find_classes(directory)


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
