"""The images a descriptor run reads: a class tree (labels from folders), a flat folder (no labels) or one split of a
packed dataset (`deepconv data pack`), each image decoded once through the shared reader and rescaled to every
scale Q in loader workers."""

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from deepconv_cli.data.folder import ImageTree, collect_images, find_classes
from deepconv_cli.data.images import READ_ERRORS, open_rgb, why_unreadable
from deepconv_cli.errors import usage
from deepconv_cli.evaluation.dense import rescale_shorter, to_uint8_tensor
from deepconv_cli.files import is_url


@dataclass
class ImageList:
    """Images under `root` by relative path; `labels[i]` indexes `classes` (-1 and no classes for a flat folder)."""

    root: Path
    paths: list[str]
    labels: list[int]
    classes: list[str]
    packed: object = None  # data.packed.PackedSplit when the images come from a pack (item i = paths[i])


def _pack_split(data: str | Path) -> tuple[str, str] | None:
    """(pack root, split) when `data` is a pack (its train split) or one split of a pack (PACK/train, PACK/val)."""
    from deepconv_cli.data import packed

    text = str(data).rstrip("/")
    parent, _, name = text.rpartition("/")
    if name in packed.SPLITS and parent and (is_url(text) or packed.is_packed(parent)):
        return parent, name
    if packed.is_packed(text):
        return text, "train"
    return None


def list_images(data: str | Path) -> ImageList:
    """A folder of class sub-folders (ImageFolder layout) or, when it has none, every image below it; or a packed
    dataset's split (the train split for the pack itself)."""
    pack = _pack_split(data)
    if pack is not None:
        from deepconv_cli.data.packed import PackedSplit, read_meta

        split = PackedSplit(pack[0], pack[1], read_meta(pack[0]))
        return ImageList(Path(str(data)), [f"{pack[1]}/{name}" for name, _ in split.samples], list(split.targets),
                         list(split.classes), split)
    root = Path(data)
    if not root.exists():
        raise usage(f"data folder not found: {root}")
    if not root.is_dir():
        raise usage(f"--data must be a folder, got a file: {root}")
    classes, _ = find_classes(root)
    if classes:
        tree = ImageTree(root)
        paths = [Path(p).relative_to(root).as_posix() for p, _ in tree.samples]
        labels = [label for _, label in tree.samples]
    else:
        paths = [p.relative_to(root).as_posix() for p in collect_images([str(root)])]
        labels = [-1] * len(paths)
    if not paths:
        raise usage(f"no images found under {root}")
    return ImageList(root, paths, labels, classes)


class ScaledImages(Dataset):
    """Item i: (i, {Q: uint8 CHW image rescaled to shorter side Q}) or (i, one-line error) for an unreadable file.

    With `raw_size`, the image is instead squashed to raw_size x raw_size and returned under the key 0.
    """

    def __init__(self, images: ImageList, indices: list[int], scales: list[int], raw_size: int = 0) -> None:
        self.images, self.indices, self.scales, self.raw_size = images, indices, scales, raw_size

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[int, dict[int, torch.Tensor] | str]:
        index = self.indices[i]
        path = self.images.root / self.images.paths[index]
        try:
            img = open_rgb(path) if self.images.packed is None else self.images.packed.open_rgb(index)
            if self.raw_size:
                size = (self.raw_size, self.raw_size)
                return index, {0: to_uint8_tensor(img.resize(size, Image.Resampling.BILINEAR))}
            return index, {q: to_uint8_tensor(rescale_shorter(img, q)) for q in self.scales}
        except READ_ERRORS as e:
            return index, f"cannot read image {path}: {why_unreadable(path, e)}"


def keep_as_list(batch: list) -> list:
    """Collate that keeps images of different sizes apart (they are grouped by shape later)."""
    return batch
