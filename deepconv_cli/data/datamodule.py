"""The Lightning DataModule: DATA_DIR/train and DATA_DIR/val as ImageFolder trees, with the paper's scale jitter."""

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from deepconv_cli.data.folder import ImageTree, check_tree
from deepconv_cli.data.stats import STATS_FILE, load_or_compute
from deepconv_cli.data.transforms import train_transform, val_transform
from deepconv_cli.errors import usage


class ImageFolderData(L.LightningDataModule):
    """Training crops at scale S (fixed, or jittered in [s_min, s_max]) and the single-scale validation check.

    Args:
        data_dir: folder holding train/ and val/, each with one sub-folder of images per class.
        s_min: smallest training scale S (shorter image side after isotropic rescaling).
        s_max: largest training scale S; equal to s_min for fixed-scale training.
        crop_size: side of the square training crop (224 in the paper).
        test_scale: Q of the validation check (shorter side before the centre crop); default the paper's
            rule for Table 3: Q = S for fixed S, Q = (s_min + s_max) / 2 for jittered S.
        batch_size: the optimisation batch (256 in the paper), the same whatever the number of devices.
        micro_batch_size: images per device per forward pass; gradients are accumulated up to batch_size.
            Default: batch_size divided by the number of devices.
        num_workers: loader processes per device.
        flip: random horizontal flips of training crops.
        pca_std: standard deviation of AlexNet's PCA colour-shift coefficients (0 disables the shift).
        stats_max_images: images used for mean RGB / PCA statistics (evenly spaced over the sorted train set).
    """

    def __init__(
        self,
        data_dir: str,
        s_min: int = 256,
        s_max: int = 256,
        crop_size: int = 224,
        test_scale: int | None = None,
        batch_size: int = 256,
        micro_batch_size: int | None = None,
        num_workers: int = 4,
        flip: bool = True,
        pca_std: float = 0.1,
        stats_max_images: int = 10000,
    ) -> None:
        super().__init__()
        self.root = Path(data_dir)
        if not self.root.is_dir():
            raise usage(f"data_dir not found: {self.root} (expected a folder with train/ and val/)")
        self.classes = check_tree(self.root / "train", "training")
        val_classes = check_tree(self.root / "val", "validation")
        if val_classes != self.classes:
            missing = sorted(set(self.classes) ^ set(val_classes))
            raise usage(f"train/ and val/ have different classes (differing: {', '.join(missing[:5])})")
        if not crop_size <= s_min <= s_max:
            raise usage(f"need crop_size <= s_min <= s_max, got {crop_size}, {s_min}, {s_max}")
        self.s_min, self.s_max, self.crop_size = s_min, s_max, crop_size
        self.test_scale = test_scale or (s_min + s_max) // 2
        if self.test_scale < crop_size:
            raise usage(f"test_scale {self.test_scale} is smaller than crop_size {crop_size}")
        self.batch_size, self.micro_batch_size = batch_size, micro_batch_size
        self.per_device_batch = micro_batch_size or batch_size
        self.num_workers, self.flip, self.pca_std = num_workers, flip, pca_std
        self.stats_max_images = stats_max_images
        self.stats: dict | None = None
        self.run_dir: Path | None = None  # where statistics go when data_dir is read-only (set by the CLI)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def setup(self, stage: str) -> None:
        self.train_set = ImageTree(self.root / "train", train_transform(self.s_min, self.s_max, self.crop_size, self.flip))
        self.val_set = ImageTree(self.root / "val", val_transform(self.test_scale, self.crop_size))
        if len(self.train_set) == 0 or len(self.val_set) == 0:
            raise usage(f"no images found under {self.root}/train or {self.root}/val")
        if self.stats is None:
            files = [path for path, _ in self.train_set.samples]
            self.stats = load_or_compute(files, self.root / "train" / STATS_FILE, self.run_dir, self.stats_max_images)

    def _loader(self, dataset: ImageTree, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.per_device_batch,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)
