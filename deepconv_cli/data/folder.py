"""ImageFolder trees as the paper's pipeline reads them: hidden folders and files are skipped, images open lazily."""

import os
import sys
from pathlib import Path

from torchvision.datasets import ImageFolder

from deepconv_cli.data.images import IMAGE_EXTENSIONS, open_lazily, to_rgb
from deepconv_cli.errors import usage

__all__ = [
    "IMAGE_EXTENSIONS", "ImageTree", "check_tree", "collect_images", "find_classes", "open_lazily", "to_rgb",
    "walk_images",
]


def walk_images(folder: str | Path, seen: set[str] | None = None) -> tuple[list[str], list[str]]:
    """Image files under `folder`, sorted, following symlinks but never entering a folder twice (a link back to
    an ancestor would otherwise repeat the data without end); hidden entries skipped. Returns (files, skipped):
    the folder links that were not followed because their target was already visited. `seen` (real paths)
    is shared by the walks of one tree, pre-filled with its root and class folders."""
    files: list[str] = []
    skipped: list[str] = []
    seen = set() if seen is None else seen

    def visit(path: str, start: bool = False) -> None:
        real = os.path.realpath(path)
        if real in seen and not start:
            skipped.append(path)
            return
        seen.add(real)
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks; a dangling or looping link is not a folder
            except OSError:
                is_dir = False
            if is_dir:
                visit(entry.path)
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                files.append(entry.path)

    visit(str(folder), start=True)
    files.sort(key=lambda p: (os.path.dirname(p), os.path.basename(p)))  # torchvision's order
    return files, skipped


def warn_skipped_links(skipped: list[str]) -> None:
    """One stderr line naming the folder links `walk_images` did not follow."""
    if skipped:
        shown = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        print(f"warning: skipped {len(skipped)} symlinked folder(s) already read through another path (a link "
              f"loop would repeat the data): {shown}", file=sys.stderr)


def collect_images(paths: list[str]) -> list[Path]:
    """What `predict` is given: files as they are, folders searched recursively (symlinks followed without loops,
    hidden entries skipped) for image extensions; sorted, each file once."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise usage(f"no such file or folder: {path}")
        if not path.is_dir():
            found.append(path)
            continue
        images, skipped = walk_images(path)
        warn_skipped_links(skipped)
        if not images:
            raise usage(f"folder {path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        found += sorted(Path(p) for p in images)
    return list(dict.fromkeys(found))


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

    def make_dataset(self, directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False):
        """(path, class index) of every image, symlinks followed without loops (see `walk_images`)."""
        samples: list[tuple[str, int]] = []
        self.skipped_links: list[str] = []
        folders = {name: os.path.join(directory, name) for name in sorted(class_to_idx)}
        seen = {os.path.realpath(p) for p in [directory, *folders.values()]}
        for name, folder in folders.items():
            files, skipped = walk_images(folder, seen)
            samples += [(path, class_to_idx[name]) for path in files]
            self.skipped_links += skipped
        return samples

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
