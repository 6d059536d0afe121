"""The training split of a pack as a litdata dataset (data/packed.py's `packed_train_set`): a module-level class, so
loader workers started by spawn (litdata's packing sets that start method for the whole process) can unpickle it."""

import io
import random

import torch
from PIL import Image

from deepconv_cli.compat.litdata import GlobalPlanDataset


class PackedTrain(GlobalPlanDataset):  # every epoch planned over all ranks (compat/litdata.py)
    """Items are (transform(image), label); an item's random crop, scale and flip are drawn from generators seeded
    by (seed, epoch, item), not from the worker's running state, so a resumed loader gives exactly the batches the
    interrupted one would have, whatever the number of workers."""

    def __init__(self, url: str, transform, seed: int, **kwargs) -> None:
        super().__init__(url, seed=seed, **kwargs)
        self.item_transform, self.item_seed = transform, seed  # litdata has its own `transform`

    def __getitem__(self, index):
        item = super().__getitem__(index)
        key = getattr(index, "index", index)
        state = random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                draw = ((self.item_seed * 100_003 + self.current_epoch) * 1_000_000_007 + int(key)) % 2**63
                random.seed(draw)
                torch.manual_seed(draw)
                return self.item_transform(Image.open(io.BytesIO(item["image"]))), item["label"]
        finally:
            random.setstate(state)
