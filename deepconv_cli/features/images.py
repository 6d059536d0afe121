"""The images a descriptor run reads: a class tree (labels from folders), a flat folder (no labels), one split of a
packed dataset (`deepconv data pack`) or the people of a boxes CSV (the action layout, data/actions.py: one row per
box), each image decoded once through the shared reader, cut to the regions asked for (the whole image, the box)
and rescaled to every scale Q in loader workers."""

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from deepconv_cli.data.actions import read_person_boxes
from deepconv_cli.data.annotations import BadAnnotation, check_box
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
    files: list[str] | None = None  # with boxes: row i is box `boxes[i]` of the image `files[i]` (paths[i]: the person)
    boxes: list[list[float]] | None = None

    def file(self, i: int) -> str:
        return self.paths[i] if self.files is None else self.files[i]


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


def list_images(data: str | Path, boxes: str | Path | None = None) -> ImageList:
    """A folder of class sub-folders (ImageFolder layout) or, when it has none, every image below it; or a packed
    dataset's split (the train split for the pack itself); with `boxes`, the CSV's people whose image is in DATA."""
    pack = _pack_split(data)
    if pack is not None and boxes:
        raise usage("--boxes reads images from a folder (`deepconv data voc --task action`), not from a pack")
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
    if boxes:
        rows = read_person_boxes(boxes, root)
        return ImageList(root, [r[0] for r in rows], [-1] * len(rows), [], None, [r[1] for r in rows],
                         [r[2] for r in rows])
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
    """Item i: (i, [{Q: uint8 CHW image rescaled to shorter side Q} per region]) or (i, one-line error) for an
    unreadable file or a box outside its image. Regions: `image` (the whole image) and `box` (its crop).

    With `raw_size`, the region is instead squashed to raw_size x raw_size and returned under the key 0.
    """

    def __init__(self, images: ImageList, indices: list[int], scales: list[int], raw_size: int = 0,
                 regions: tuple[str, ...] = ("image",)) -> None:
        self.images, self.indices, self.scales, self.raw_size, self.regions = images, indices, scales, raw_size, regions

    def __len__(self) -> int:
        return len(self.indices)

    def views(self, img: Image.Image) -> dict[int, torch.Tensor]:
        if self.raw_size:
            return {0: to_uint8_tensor(img.resize((self.raw_size, self.raw_size), Image.Resampling.BILINEAR))}
        return {q: to_uint8_tensor(rescale_shorter(img, q)) for q in self.scales}

    def __getitem__(self, i: int) -> tuple[int, list[dict[int, torch.Tensor]] | str]:
        index = self.indices[i]
        path = self.images.root / self.images.file(index)
        try:
            img = open_rgb(path) if self.images.packed is None else self.images.packed.open_rgb(index)
            out = []
            for region in self.regions:
                if region == "box":
                    box = self.images.boxes[index]
                    check_box(box, img.size, f"{self.images.paths[index]} (--boxes)")
                    out.append(self.views(img.crop(tuple(box))))
                else:
                    out.append(self.views(img))
            return index, out
        except BadAnnotation as e:
            return index, str(e)
        except READ_ERRORS as e:
            return index, f"cannot read image {path}: {why_unreadable(path, e)}"


def keep_as_list(batch: list) -> list:
    """Collate that keeps images of different sizes apart (they are grouped by shape later)."""
    return batch
