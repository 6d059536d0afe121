"""The Lightning DataModule: DATA_DIR/train and DATA_DIR/val as ImageFolder trees, with the paper's scale jitter."""

import os
import sys
import time
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from jsonargparse.typing import NonNegativeFloat, NonNegativeInt, PositiveInt
from lightning.fabric.utilities.rank_zero import rank_zero_only
from torch.utils.data import DataLoader

from deepconv_cli.data import packed
from deepconv_cli.data.distributed import UnpaddedDistributedSampler
from deepconv_cli.data.folder import ImageTree, check_tree, warn_skipped_links
from deepconv_cli.data.mean_image import load_or_compute_mean_image
from deepconv_cli.data.scan import SCAN_FILE, scan_images
from deepconv_cli.data.stats import STATS_FILE, load_or_compute
from deepconv_cli.data.transforms import train_transform, val_transform
from deepconv_cli.errors import failure, usage
from deepconv_cli.files import is_url

PARALLEL_SCAN_MIN = 2000  # below this many unscanned files, decoding in-process beats starting a pool
AT_LEAST = {"s_min": 1, "s_max": 1, "crop_size": 1, "test_scale": 1, "batch_size": 1, "micro_batch_size": 1,
            "num_workers": 0, "pca_std": 0, "stats_max_images": 0}


def check_ranges(values: dict) -> None:
    """The typed signature's ranges again, for callers that build the data module in Python (one line, exit 2)."""
    for name, low in AT_LEAST.items():
        value = values.get(name)
        if value is not None and not value >= low:
            raise usage(f"data.{name} must be {'positive' if low else 'at least 0'}, got {value}")


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
        center_square: take training crops from the central S x S square of the rescaled image only (AlexNet
            section 2: "rescaled the image such that the shorter side was of length 256, and then cropped out
            the central 256x256 patch"); off for VGG, whose crops come from the whole rescaled image.
        pca_std: standard deviation of AlexNet's PCA colour-shift coefficients (0 disables the shift).
        mean_image: subtract the training set's per-pixel mean image (AlexNet section 2: "subtracting the mean
            activity over the training set from each pixel"; the mean of the central s_min x s_min squares)
            instead of its mean RGB (the VGG paper's preprocessing, the default).
        stats_max_images: images used for mean RGB / PCA statistics (evenly spaced over the sorted train set).
        skip_bad_images: leave out files that do not decode as images (and say how many) instead of stopping
            before training with one line per file.
        decode_on: where training JPEGs are decoded: "cpu" (the loader workers) or "cuda" (in batches on the
            training GPU with nvJPEG; the random parameters are still drawn in the workers, exactly as on the CPU
            path; other files, and runs without a CUDA device, take the CPU path). See data/device_decode.py.
    """

    def __init__(
        self,
        data_dir: str,
        s_min: PositiveInt = 256,
        s_max: PositiveInt = 256,
        crop_size: int = 224,  # plain int: it is linked to model.crop_size (checked in check_ranges)
        test_scale: PositiveInt | None = None,
        batch_size: PositiveInt = 256,
        micro_batch_size: PositiveInt | None = None,
        num_workers: NonNegativeInt = 4,
        flip: bool = True,
        center_square: bool = False,
        pca_std: NonNegativeFloat = 0.1,
        mean_image: bool = False,
        stats_max_images: NonNegativeInt = 10000,
        skip_bad_images: bool = False,
        decode_on: Literal["cpu", "cuda"] = "cpu",
    ) -> None:
        super().__init__()
        check_ranges(locals())
        self.root = Path(data_dir)
        self.packed = packed.read_meta(data_dir) if packed.is_packed(data_dir) else None  # data/packed.py
        if self.packed:
            self.root = data_dir if is_url(data_dir) else self.root  # Path() would fold s3:// to s3:/
            self.classes = self.packed["classes"]
        elif not self.root.is_dir():
            raise usage(f"data_dir not found: {self.root} (expected a folder with train/ and val/)")
        else:
            self.classes = check_tree(self.root / "train", "training")
        val_classes = self.classes if self.packed else check_tree(self.root / "val", "validation")
        if val_classes != self.classes:
            missing = sorted(set(self.classes) ^ set(val_classes))
            raise usage(f"train/ and val/ have different classes (differing: {', '.join(missing[:5])})")
        if not crop_size <= s_min <= s_max:
            raise usage(f"need crop_size <= s_min <= s_max, got {crop_size}, {s_min}, {s_max}")
        # plain numbers from here on: jsonargparse's PositiveInt would reach checkpoints, which then no longer
        # load with torch.load(weights_only=True)
        self.s_min, self.s_max, self.crop_size = int(s_min), int(s_max), int(crop_size)
        self.test_scale = int(test_scale or (s_min + s_max) // 2)
        if self.test_scale < crop_size:
            raise usage(f"test_scale {self.test_scale} is smaller than crop_size {crop_size}")
        self.batch_size = int(batch_size)
        self.micro_batch_size = None if micro_batch_size is None else int(micro_batch_size)
        self.per_device_batch = self.micro_batch_size or self.batch_size
        self.num_workers, self.flip, self.pca_std = int(num_workers), flip, float(pca_std)
        self.center_square = center_square
        self.use_mean_image = mean_image
        self.mean_image: np.ndarray | None = None  # (3, s_min, s_min), 0..255, when use_mean_image
        self.stats_max_images = int(stats_max_images)
        self.skip_bad_images = skip_bad_images
        self.decode_on, self._said_decode = decode_on, False
        self.stats: dict | None = None
        self.run_dir: Path | None = None  # where caches go when data_dir is read-only (set by the CLI)
        self._reported = False

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def prepare_data(self) -> None:
        """Once per machine, before the other processes read the caches: the bad-image scan and the statistics."""
        self._build()

    def setup(self, stage: str) -> None:
        self.train_set, self.val_set = self._build()

    def _build(self) -> tuple[ImageTree, ImageTree]:
        if self.packed:
            return self._build_packed()
        started = time.perf_counter()
        train = ImageTree(self.root / "train", train_transform(self.s_min, self.s_max, self.crop_size, self.flip,
                                                                 self.center_square))
        val = ImageTree(self.root / "val", val_transform(self.test_scale, self.crop_size))
        self._drop_bad_images(train, val)
        if len(train) == 0 or len(val) == 0:
            raise usage(f"no images found under {self.root}/train or {self.root}/val")
        if self.stats is None:
            files = [path for path, _ in train.samples]
            self.stats = load_or_compute(files, self.root / "train" / STATS_FILE, self.run_dir, self.stats_max_images,
                                         workers=self.num_workers)
        if self.use_mean_image and self.mean_image is None:
            files = [path for path, _ in train.samples]
            self.mean_image = load_or_compute_mean_image(files, self.s_min, self.root / "train", self.run_dir,
                                                         self.stats_max_images)
        if not self._reported and rank_zero_only.rank == 0:  # the time to the first step a large folder costs
            print(f"data: {len(train):,} training + {len(val):,} validation images ready in "
                  f"{time.perf_counter() - started:.1f} s (bad-image scan and statistics, cached after the first run)")
        self._reported = True
        return train, val

    def _build_packed(self) -> tuple[packed.PackedSplit, packed.PackedSplit]:
        """A packed dataset: no scan (bad files were left out at pack time), statistics from the packed images."""
        if self.use_mean_image:
            raise usage("data.mean_image is not available with packed data; use the ImageFolder tree")
        train = packed.PackedSplit(self.root, "train", self.packed, train_transform(
            self.s_min, self.s_max, self.crop_size, self.flip, self.center_square))
        val = packed.PackedSplit(self.root, "val", self.packed, val_transform(self.test_scale, self.crop_size))
        if self.stats is None:
            self.stats = packed.load_or_compute_stats(train, self.run_dir, self.stats_max_images, self.num_workers)
        return train, val

    def _drop_bad_images(self, train: ImageTree, val: ImageTree) -> None:
        """Scan (cached) every train and val file; stop on unreadable ones, or leave them out when told to."""
        files = [path for path, _ in train.samples + val.samples]
        cache = [self.root / SCAN_FILE] + ([self.run_dir / SCAN_FILE] if self.run_dir else [])
        workers = self.num_workers if len(files) >= PARALLEL_SCAN_MIN else 0
        _, bad = scan_images(files, cache, workers=workers, progress=rank_zero_only.rank == 0)
        report = not self._reported and rank_zero_only.rank == 0
        if report:
            warn_skipped_links(train.skipped_links + val.skipped_links)
        if bad and not self.skip_bad_images:
            if report:
                for item in bad:
                    print(f"bad image: {item.path}: {item.reason}", file=sys.stderr)
            raise failure(
                f"{len(bad)} file(s) under {self.root} do not decode as images (listed above): fix or remove them,"
                " or pass --data.skip_bad_images true to leave them out"
            )
        if bad:
            unreadable = {item.path for item in bad}
            train.drop(unreadable)
            val.drop(unreadable)
            if report:
                print(f"skipping {len(bad)} unreadable image file(s) under {self.root} (--data.skip_bad_images)")
        empty = train.empty_classes()
        if empty and report:
            print(f"warning: {len(empty)} class(es) have no training images: {', '.join(empty[:10])}", file=sys.stderr)

    def _loader(self, dataset: ImageTree, shuffle: bool, sampler: UnpaddedDistributedSampler | None = None,
                collate_fn=None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.per_device_batch,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle,
            collate_fn=collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        if self.batch_size > len(self.train_set):  # drop_last would leave no batch: an epoch that trains nothing
            raise usage(
                f"data.batch_size {self.batch_size} is larger than the {len(self.train_set)} training images: no full"
                f" batch, nothing would be trained; use --data.batch_size {len(self.train_set)} or less"
            )
        if self.packed:  # litdata shards over ranks and workers, shuffles, and its loader's position is saved
            seed = int(os.environ.get("PL_GLOBAL_SEED", 42))
            dataset = packed.packed_train_set(self.root, self.train_set.transform, seed, drop_last=True)
            return packed.resumable_loader(dataset, batch_size=self.per_device_batch, num_workers=self.num_workers,
                                            pin_memory=torch.cuda.is_available(), drop_last=True)
        if self.decode_on == "cuda":
            if self.decodes_on_device():
                from deepconv_cli.data.device_decode import DeferredTrainCrop, collate

                self.train_set.transform = DeferredTrainCrop(self.s_min, self.s_max, self.crop_size, self.flip,
                                                             self.center_square)
                return self._loader(self.train_set, shuffle=True, collate_fn=collate)
            if rank_zero_only.rank == 0 and not self._said_decode:
                self._said_decode = True
                print("data.decode_on cuda: training does not run on a CUDA device, so the loader workers decode the"
                      " JPEGs (the CPU path)")
        return self._loader(self.train_set, shuffle=True)

    def decodes_on_device(self) -> bool:
        """`decode_on: cuda` takes effect: the training runs on a CUDA device (else the CPU path decodes)."""
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def val_dataloader(self) -> DataLoader:
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return self._loader(self.val_set, shuffle=False)
        # each validation image exactly once over all processes (Lightning's default sampler would repeat some)
        sampler = UnpaddedDistributedSampler(self.val_set, trainer.world_size, trainer.global_rank)
        return self._loader(self.val_set, shuffle=False, sampler=sampler)
