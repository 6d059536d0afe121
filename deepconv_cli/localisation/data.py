"""Training and validation crops with box targets that follow the crop, the scale jitter and the flip exactly.

The pixels come from data/transforms.py's geometry: `ScaleJitterCrop.params` draws S and the crop's place in
S-space, `resized_crop` resizes exactly that (fractional) box of the original image. The same window, mapped
back to the original image (left / s, top / s, crop / s with s = S / shorter side), encodes the target box, and
a flip of the crop mirrors the box's centre. Like OverFeat, a training crop is redrawn (up to `tries` times)
until it holds at least `min_cover` of an object's area, so the regressor learns from crops that show the object.
"""

import random
import sys
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from deepconv_cli.data import packed
from deepconv_cli.data.annotations import Annotated, attach_boxes
from deepconv_cli.data.folder import ImageTree, check_tree
from deepconv_cli.data.stats import STATS_FILE, load_or_compute
from deepconv_cli.data.transforms import ScaleJitterCrop, resized_crop
from deepconv_cli.errors import usage
from deepconv_cli.localisation.boxes import encode, flip_encoded


def centre_window(size: tuple[int, int], q: int, crop: int) -> tuple[float, float]:
    """(left, top) in Q-space of the central crop, as `CenterCropAt` places it."""
    w, h = size
    return (w * q / min(w, h) - crop) / 2, (h * q / min(w, h) - crop) / 2


def inside_fraction(boxes: torch.Tensor, left: float, top: float, side: float) -> torch.Tensor:
    """The fraction of each box's area inside the window."""
    lt = torch.maximum(boxes[:, :2], torch.tensor([left, top]))
    rb = torch.minimum(boxes[:, 2:], torch.tensor([left + side, top + side]))
    inside = (rb - lt).clamp(min=0).prod(1)
    return inside / (boxes[:, 2:] - boxes[:, :2]).prod(1).clamp(min=1e-9)


class BoxCrops(Dataset):
    """(uint8 crop (3, c, c), target (cx, cy, w, h) relative to the crop, class index) per annotated image.

    Training: S in [s_min, s_max], random crop, random flip. Validation (`test_scale` set): the centre crop at Q.
    The target is the object of the image's class with the largest area inside the crop.
    """

    def __init__(self, items: list[Annotated], crop: int, s_min: int, s_max: int, test_scale: int | None = None,
                 flip: bool = True, min_cover: float = 0.5, tries: int = 10) -> None:
        self.items, self.crop, self.test_scale = items, crop, test_scale
        self.jitter = ScaleJitterCrop(s_min, s_max, crop)
        self.flip, self.min_cover, self.tries = flip and test_scale is None, min_cover, tries

    def __len__(self) -> int:
        return len(self.items)

    def window(self, item: Annotated) -> tuple[int, float, float]:
        """(S, left, top): the crop in S-space."""
        if self.test_scale is not None:
            return (self.test_scale, *centre_window(item.size, self.test_scale, self.crop))
        for _ in range(self.tries):
            s, left, top = self.jitter.params(item.size)
            f = s / min(item.size)
            if inside_fraction(item.boxes, left / f, top / f, self.crop / f).max() >= self.min_cover:
                break
        return s, left, top

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        item = self.items[index]
        s, left, top = self.window(item)
        with item.open() as img:
            x = TF.pil_to_tensor(resized_crop(img, s, self.crop, left, top))
        f = s / min(item.size)  # original pixels -> S-space
        window = (left / f, top / f, self.crop / f)
        target = encode(item.boxes[inside_fraction(item.boxes, *window).argmax()], *window)
        if self.flip and random.random() < 0.5:
            x, target = torch.flip(x, dims=[2]), flip_encoded(target)
        return x, target, item.label


def packed_annotated(root: str | Path, split: str, meta: dict) -> list[Annotated]:
    """The items of a pack's split that were packed with boxes (`deepconv data pack` of a tree with boxes/)."""
    table = meta["splits"][split].get("boxes")
    if not table:
        raise usage(f"{root} holds no {split} boxes: pack a tree that has them (`deepconv data pack SRC OUT` with "
                    "SRC/boxes, or --boxes PATH)")
    source = packed.PackedSplit(root, split, meta)
    items = []
    for key, entry in sorted(table.items(), key=lambda kv: int(kv[0])):
        i = int(key)
        items.append(Annotated(f"{split}/{source.samples[i][0]}", source.samples[i][1],
                               torch.tensor(entry["boxes"], dtype=torch.float32), tuple(entry["size"]), source, i))
    return items


class LocaliseData(L.LightningDataModule):
    """DATA_DIR/train and DATA_DIR/val image trees plus box annotations, as crops with box targets.

    Args:
        data_dir: folder holding train/ and val/ (one sub-folder of images per class) and, by default, boxes/;
            or a packed dataset whose boxes were packed with it (`deepconv data pack`).
        boxes: the box annotations: a folder of <class>/<image stem>.xml (PASCAL VOC) or a CSV of
            path,class,x0,y0,x1,y1 (default: DATA_DIR/boxes).
        s_min: smallest training scale S (the paper trains localisers at a fixed S: 256 or 384).
        s_max: largest training scale S.
        crop_size: crop side; must be the classifier's crop size.
        test_scale: Q of the validation check (centre crop, ground-truth class); default (s_min + s_max) / 2.
        batch_size: the optimisation batch.
        micro_batch_size: images per device per step (gradients accumulate up to batch_size).
        num_workers: loader processes per device.
        flip: random horizontal flips of training crops (the box flips with them).
        pca_std: AlexNet's PCA colour shift std (0 disables it).
        stats_max_images: images used for the PCA statistics.
        skip_bad_images: leave out images whose annotation is malformed or outside the image (and count them).
        min_cover: a training crop is redrawn until it holds at least this fraction of an object.
    """

    def __init__(self, data_dir: str, boxes: str | None = None, s_min: int = 256, s_max: int = 256,
                 crop_size: int = 224, test_scale: int | None = None, batch_size: int = 256,
                 micro_batch_size: int | None = None, num_workers: int = 4, flip: bool = True, pca_std: float = 0.1,
                 stats_max_images: int = 10000, skip_bad_images: bool = False, min_cover: float = 0.5) -> None:
        super().__init__()
        self.root, self.data_dir = Path(data_dir), data_dir  # data_dir as given: a pack may be a URL
        self.pack = packed.read_meta(data_dir) if packed.is_packed(data_dir) else None  # `deepconv data pack`
        if self.pack is not None:
            if boxes:
                raise usage(f"{data_dir} is a packed dataset: its boxes were packed with it (--data.boxes is for "
                            "folders; pack other boxes with `deepconv data pack SRC OUT --boxes PATH`)")
            self.classes = self.pack["classes"]
        elif not self.root.is_dir():
            raise usage(f"data_dir not found: {self.root} (expected a folder with train/, val/ and boxes/)")
        else:
            self.classes = check_tree(self.root / "train", "training")
            if check_tree(self.root / "val", "validation") != self.classes:
                raise usage("train/ and val/ have different classes")
        if not crop_size <= s_min <= s_max:
            raise usage(f"need crop_size <= s_min <= s_max, got {crop_size}, {s_min}, {s_max}")
        self.boxes = Path(boxes) if boxes else self.root / "boxes"
        self.s_min, self.s_max, self.crop_size = s_min, s_max, crop_size
        self.test_scale = test_scale or (s_min + s_max) // 2
        self.batch_size, self.micro_batch_size = batch_size, micro_batch_size
        self.per_device_batch = micro_batch_size or batch_size
        self.num_workers, self.flip, self.pca_std, self.min_cover = num_workers, flip, pca_std, min_cover
        self.stats_max_images, self.skip_bad_images = stats_max_images, skip_bad_images
        self.stats: dict | None = None
        self.run_dir: Path | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def annotated(self, split: str) -> list[Annotated]:
        if self.pack is not None:
            return packed_annotated(self.data_dir, split, self.pack)
        tree = ImageTree(self.root / split)
        items, report = attach_boxes(tree.samples, self.classes, self.boxes, self.skip_bad_images)
        if report.summary():
            print(f"{split}: {len(items)} images with boxes; left out: {report.summary()}", file=sys.stderr)
        if not items:
            raise usage(f"no {split} image under {self.root / split} has a box in {self.boxes}")
        return items

    def setup(self, stage: str) -> None:
        train, val = self.annotated("train"), self.annotated("val")
        self.train_set = BoxCrops(train, self.crop_size, self.s_min, self.s_max, flip=self.flip,
                                  min_cover=self.min_cover)
        self.val_set = BoxCrops(val, self.crop_size, self.s_min, self.s_max, test_scale=self.test_scale)
        if self.stats is None and self.pack is not None:  # all the pack's training images, as for classification
            self.stats = packed.load_or_compute_stats(train[0].source, self.run_dir, self.stats_max_images,
                                                      self.num_workers)
        elif self.stats is None:
            files = [item.path for item in train]
            self.stats = load_or_compute(files, self.root / "train" / STATS_FILE, self.run_dir, self.stats_max_images)

    def _loader(self, dataset: BoxCrops, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.per_device_batch, shuffle=shuffle, num_workers=self.num_workers,
                          pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0,
                          drop_last=shuffle and len(dataset) > self.per_device_batch)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)
