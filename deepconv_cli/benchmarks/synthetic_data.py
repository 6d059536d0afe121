"""A data module of random uint8 crops made in memory, for timing `deepconv train`'s loop without a dataset.

`deepconv benchmark train` builds the run with `training/run.py`'s `build_cli(..., data_class=SyntheticData)`:
the same LightningModule, callbacks, precision, memory format, compile setting and optimizer as `deepconv train`,
with only the images replaced. It has the attributes the CLI and the module read from `ImageFolderData` (class
names, batch plan, statistics for the PCA colour shift, scales).
"""

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

# ImageNet's mean RGB and PCA (AlexNet, section 4.1): any fixed numbers do; these make the colour shift realistic
IMAGENET_STATS = {
    "mean": [123.68, 116.78, 103.94],
    "pca_eigval": [0.2175 * 255**2, 0.0188 * 255**2, 0.0045 * 255**2],
    "pca_eigvec": [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]],
}


class _Batches(Dataset):
    """`length` batches drawn from `pool` pre-made ones (batches are whole items: the loader's batch_size is None)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, length: int) -> None:
        self.x, self.y, self.length = x, y, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i % len(self.x)], self.y[i % len(self.y)]


class SyntheticData(L.LightningDataModule):
    """Random uint8 crops and labels, generated once in memory.

    Args:
        crop_size: crop side.
        batch_size: images per optimisation step (split across devices and micro-batches as `deepconv train` does).
        micro_batch_size: images per forward/backward pass; default batch_size / devices.
        num_workers: kept for the CLI's thread budget; the batches are already in memory.
        class_count: number of classes.
        steps: training batches per epoch.
        pool: distinct batches made (reused round-robin, so memory stays bounded).
        s_min: reported training scale (checkpoint metadata only).
        s_max: reported training scale (checkpoint metadata only).
        pca_std: the PCA colour shift's standard deviation (applied by the module on the device).
    """

    def __init__(self, crop_size: int = 224, batch_size: int = 256, micro_batch_size: int | None = None,
                 num_workers: int = 0, class_count: int = 1000, steps: int = 100, pool: int = 4, s_min: int = 256,
                 s_max: int = 512, pca_std: float = 0.1) -> None:
        super().__init__()
        self.crop_size, self.batch_size, self.micro_batch_size = int(crop_size), int(batch_size), micro_batch_size
        self.per_device_batch = micro_batch_size or self.batch_size
        self.num_workers, self.steps, self.pool = int(num_workers), int(steps), int(pool)
        self.classes = [str(i) for i in range(int(class_count))]
        self.s_min, self.s_max, self.pca_std = int(s_min), int(s_max), float(pca_std)
        self.stats, self.mean_image, self.center_square = IMAGENET_STATS, None, False
        self.run_dir = None  # set by the CLI, unused
        self.root = "synthetic"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _loader(self, length: int) -> DataLoader:
        g = torch.Generator().manual_seed(0)
        n, b, c = min(self.pool, length), self.per_device_batch, self.crop_size
        x = torch.randint(0, 256, (n, b, 3, c, c), dtype=torch.uint8, generator=g)
        y = torch.randint(0, self.num_classes, (n, b), generator=g)
        return DataLoader(_Batches(x, y, length), batch_size=None, shuffle=False,
                          pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.steps)

    def val_dataloader(self) -> DataLoader:
        return self._loader(1)
