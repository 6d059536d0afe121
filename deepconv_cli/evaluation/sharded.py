"""`deepconv evaluate --devices N`: N processes each evaluate a shard of the images; rank 0 scores them all.

Rank r of N evaluates images r, r + N, r + 2N, ... (`UnpaddedDistributedSampler`: no image repeated to even out
the shards) through the one-device chunk loop (`runner.run_chunks`, handed in by the runner, so this module never
imports it back), on cuda:r with NCCL or on the CPU with gloo.
The per-image posteriors of every row are gathered back into dataset order (`gather_by_index`, which refuses a
missing image), and rank 0 computes the rows exactly as one process would: the same torchmetrics over the same
posteriors, each image counted once. A row's seconds are the slowest process's forward time. A usage or
failure error in any process stops them all and is reported by the parent as one line.
"""

import ctypes
import logging
import signal
import socket
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException

from deepconv_cli.data.distributed import UnpaddedDistributedSampler, gather_by_index
from deepconv_cli.errors import DeepconvError, failure, usage

PR_SET_PDEATHSIG = 1


def device_kind(device: str, devices: int) -> str:
    """'cuda' or 'cpu' for `--device` with `--devices N` (> 1); a device the processes cannot share is an error."""
    kind = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if kind not in ("cpu", "cuda"):
        raise usage(f"--devices {devices} takes --device auto, cuda or cpu (process r uses cuda:r), not {device!r}")
    if kind == "cuda":
        count = torch.cuda.device_count()
        if count < devices:
            raise usage(f"--devices {devices}: only {count} CUDA device(s) here")
    return kind


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    try:  # Linux: SIGKILL when the parent dies, so no process waits for its peers after a kill -9
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def evaluate_sharded(job, devices: int, kind: str, loop: tuple, progress: bool = True) -> list[dict]:
    """The rows of `runner.evaluate` for `job`, computed by `devices` processes; `loop` is the one-device
    (load_members, run_chunks) pair, module-level functions (they travel to the spawned processes by name)."""
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)  # "terminating process ..." lines
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    try:
        mp.start_processes(_worker, args=(devices, kind, _free_port(), job, results, progress, loop), nprocs=devices,
                           join=True, start_method="spawn")
    except ProcessException as e:
        while not results.empty():
            message = results.get()
            if message[0] == "error":
                raise DeepconvError(message[1], message[2]) from None
        last = (str(e).strip().splitlines() or ["no message"])[-1]
        raise failure(f"evaluation process {e.error_index} of {devices} failed: {last}") from None
    while not results.empty():
        message = results.get()
        if message[0] == "rows":
            return message[1]
    raise failure(f"evaluation over {devices} processes returned no result")


def _worker(rank: int, world: int, kind: str, port: int, job, results, progress: bool, loop: tuple) -> None:
    _die_with_parent()
    try:
        _evaluate_shard(rank, world, kind, port, job, results, progress, loop)
    except DeepconvError as e:
        results.put(("error", str(e), e.code))
        sys.exit(e.code)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _evaluate_shard(rank: int, world: int, kind: str, port: int, job, results, progress: bool, loop: tuple) -> None:
    from deepconv_cli.evaluation.rows import make_rows, update_rows
    from deepconv_cli.training.resources import set_threads

    load_members, run_chunks = loop

    set_threads(job.num_workers, world)
    device = torch.device(f"cuda:{rank}") if kind == "cuda" else torch.device("cpu")
    if kind == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if kind == "cuda" else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world, timeout=timedelta(hours=2))
    members = load_members(job.ckpts, job.scales, device)
    keys = list(make_rows(members, job.method))
    positions: list[torch.Tensor] = []
    parts: dict[tuple[str, str], list[torch.Tensor]] = {key: [] for key in keys}

    def keep(ids: torch.Tensor, target: torch.Tensor, posteriors: dict) -> None:
        positions.append(ids)
        for key, p in posteriors.items():
            parts[key].append(p)

    sampler = UnpaddedDistributedSampler(job.indices, num_replicas=world, rank=rank)  # positions r, r + N, ...
    seconds = run_chunks(members, job, keep, sampler, progress and rank == 0)
    total, classes = len(job.indices), members[0].meta.num_classes
    ids = torch.cat(positions) if positions else torch.zeros(0, dtype=torch.long)
    gathered = {}
    for key in keys:  # the same order on every rank: each gather is one collective
        values = torch.cat(parts[key]) if parts[key] else torch.zeros(0, classes)
        gathered[key] = gather_by_index(ids, values.to(device), total).cpu()
    slowest = torch.tensor(list(seconds.values()), dtype=torch.float64, device=device)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    if rank == 0:
        rows = make_rows(members, job.method)
        update_rows(rows, gathered, job.targets())
        seconds = dict(zip(seconds, slowest.cpu().tolist()))
        results.put(("rows", [row.result(job.flip, total, seconds) for row in rows.values()]))
