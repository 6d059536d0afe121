"""Evaluation over several processes that counts every image exactly once.

torch's DistributedSampler pads the dataset by repeating images until it divides evenly by the number of
processes, so an error rate computed over its shards counts some images twice. `UnpaddedDistributedSampler`
gives rank r the images r, r + W, r + 2W, ... (shards differ in length by at most one); `gather_by_index`
collects per-image results from every rank back into dataset order and proves each image is there.
"""

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from deepconv_cli.errors import failure


class UnpaddedDistributedSampler(DistributedSampler):
    """Rank r of W takes indices r, r + W, r + 2W, ... in order: every index once over all ranks, no padding.

    A DistributedSampler subclass, so Lightning keeps it instead of wrapping the loader in its padded one. Shards
    are uneven by up to one image, which is fine for evaluation (no gradient synchronisation per batch).
    """

    def __init__(self, dataset: Dataset, num_replicas: int | None = None, rank: int | None = None) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.indices = list(range(self.rank, len(dataset), self.num_replicas))
        self.num_samples = len(self.indices)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return self.num_samples


def gather_by_index(indices: torch.Tensor, values: torch.Tensor, total: int) -> torch.Tensor:
    """Per-sample rows from all ranks, as one (total, ...) tensor in dataset order, on every rank.

    Args:
        indices: (n,) dataset indices of the rows this rank computed.
        values: (n, ...) the rows (e.g. class posteriors), on the device the process group communicates from.
        total: dataset size. Indices seen twice (a padded DistributedSampler) keep one row; a missing index is
            an error, so the caller can never report a result over fewer images than the dataset holds.
    """
    indices = indices.to(values.device, torch.long)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        world = dist.get_world_size()
        count = torch.tensor([len(indices)], device=values.device)
        counts = [torch.zeros_like(count) for _ in range(world)]
        dist.all_gather(counts, count)
        longest = int(max(c.item() for c in counts))
        pad = longest - len(indices)
        padded_idx = torch.cat([indices, indices.new_full((pad,), -1)])
        padded_val = torch.cat([values, values.new_zeros((pad, *values.shape[1:]))])
        all_idx = [torch.empty_like(padded_idx) for _ in range(world)]
        all_val = [torch.empty_like(padded_val) for _ in range(world)]
        dist.all_gather(all_idx, padded_idx)
        dist.all_gather(all_val, padded_val)
        indices, values = torch.cat(all_idx), torch.cat(all_val)
        keep = indices >= 0
        indices, values = indices[keep], values[keep]
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= total):
        raise failure(f"distributed evaluation returned indices outside 0..{total - 1}")
    seen = torch.bincount(indices.cpu(), minlength=total)
    if bool((seen == 0).any()):
        missing = int((seen == 0).sum())
        raise failure(f"distributed evaluation covered {total - missing} of {total} images; refusing a partial result")
    order = torch.argsort(indices, stable=True)
    indices, values = indices[order], values[order]
    first = torch.ones_like(indices, dtype=torch.bool)
    first[1:] = indices[1:] != indices[:-1]  # of repeated indices keep the first row
    return values[first]
