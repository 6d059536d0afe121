"""litdata behaviour without a public API: a StreamingDataset whose every epoch is planned over all ranks as one
node (litdata's multi-node plan keeps each node on the chunks it read in epoch 1)."""

import litdata
from litdata.utilities.env import _DistributedEnv


class GlobalPlanDataset(litdata.StreamingDataset):
    """Every epoch shards the whole set over all ranks. litdata's own multi-node plan keeps each node on the chunks
    it read in epoch 1 (to reuse its download cache), so from epoch 2 a chunk that epoch 1 split between nodes is
    read whole by each of them: images repeated, and nodes whose epochs differ in length (a DDP hang). Seen as a
    single-node world of the same ranks, the plan is global every epoch."""

    def _create_shuffler(self, cache):
        shuffler = super()._create_shuffler(cache)  # noqa: SLF001 - litdata's one place to plan an epoch
        shuffler.get_chunks_and_intervals_per_workers = _GlobalPlan(shuffler.get_chunks_and_intervals_per_workers)
        return shuffler


class _GlobalPlan:
    """A shuffler's plan seen from a single-node world of the same ranks; a class, not a closure, so the dataset
    pickles into loader workers started by spawn or forkserver."""

    def __init__(self, plan) -> None:
        self.plan = plan

    def __call__(self, env, num_workers: int, batch_size: int, epoch: int):
        return self.plan(_DistributedEnv(env.world_size, env.global_rank, 1), num_workers, batch_size, epoch)


def quiet_download_crashes() -> None:
    """litdata prints a traceback when its chunk-download thread dies (a server gone, after its retries) and then
    raises the same error in the reader; deepconv turns that error into one line (data/storage.py `fault`), so the
    printout is dropped. The error itself still stops the run."""
    from litdata.streaming.reader import PrepareChunksThread

    PrepareChunksThread._report_crash = lambda self, exc: None  # noqa: SLF001 - no public switch for the printout
