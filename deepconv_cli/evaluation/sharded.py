"""`deepconv evaluate --devices N`: N processes each evaluate a shard of the images; rank 0 scores them all.

Lightning Fabric launches the processes (its spawn launcher: the port, the process group, gloo on the CPU, NCCL
on cuda:0..N-1 with `fabric.device`) and returns rank 0's rows. Rank r of N evaluates images r, r + N, r + 2N, ...
(`UnpaddedDistributedSampler`: no image repeated to even out the shards) through the one-device chunk loop
(`runner.run_chunks`, handed in by the runner, so this module never imports it back). The per-image posteriors
of every row are gathered back into dataset order (`gather_by_index`, which refuses a missing image), and rank 0
computes the rows exactly as one process would: the same torchmetrics over the same posteriors, each image
counted once. A row's seconds are the slowest process's forward time. A usage or failure error in any process is
shared with all of them (a collective after the shard's loop) and reported by the parent as one line; a process
that dies otherwise stops the others (torch's launcher) and is reported as one line too.
"""

import ctypes
import json
import logging
import multiprocessing
import os
import signal
import tempfile
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.multiprocessing.spawn import ProcessException

from deepconv_cli.data.distributed import UnpaddedDistributedSampler, gather_by_index
from deepconv_cli.errors import DeepconvError, failure, usage

PR_SET_PDEATHSIG = 1
LAUNCH_ENVIRONMENT = ("MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK")  # what the launch sets in this process
SETUP_LOGGERS = ("lightning.fabric.utilities.distributed", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.utilities.rank_zero")
if multiprocessing.parent_process() is not None:  # a spawned process imports this module before Fabric sets it up:
    for _name in SETUP_LOGGERS:  # its "Initializing distributed", "distributed_backend=gloo" lines are not for users
        logging.getLogger(_name).setLevel(logging.WARNING)


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


def _die_with_parent() -> None:
    try:  # Linux: SIGKILL when the parent dies, so no process waits for its peers after a kill -9
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def evaluate_sharded(job, devices: int, kind: str, loop: tuple, progress: bool = True) -> list[dict]:
    """The rows of `runner.evaluate` for `job`, computed by `devices` processes; `loop` is the one-device
    (load_members, run_chunks) pair, module-level functions (they travel to the spawned processes by name)."""
    from lightning.fabric import Fabric
    from lightning.fabric.plugins.environments import LightningEnvironment
    from lightning.fabric.strategies import DDPStrategy

    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)  # "terminating process ..." lines
    # this machine's processes, spawned here, whatever cluster (SLURM, torchrun) the command runs in
    strategy = DDPStrategy(cluster_environment=LightningEnvironment(), start_method="spawn",
                           timeout=timedelta(hours=2))
    fabric = Fabric(accelerator=kind, devices=devices, strategy=strategy, precision="32-true")
    saved = {name: os.environ.get(name) for name in LAUNCH_ENVIRONMENT}
    with tempfile.TemporaryDirectory(prefix="deepconv-evaluate-") as folder:
        agreed = os.path.join(folder, "error.json")
        try:
            outcome = fabric.launch(_evaluate_shard, job, loop, progress, agreed)
        except ProcessException as e:
            error = _agreed_error(agreed)  # a process that died on its way out, after the error was shared
            if error is not None:
                raise error from None
            last = (str(e).strip().splitlines() or ["no message"])[-1]
            raise failure(f"evaluation process {e.error_index} of {devices} failed: {last}") from None
        finally:  # the next launch in this process picks its own free port
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    if outcome[0] == "error":
        raise DeepconvError(outcome[1], outcome[2])
    return outcome[1]


def _agreed_error(path: str) -> DeepconvError | None:
    """The error every process agreed on, as a rank wrote it to `path` before returning (None when none did)."""
    try:
        with open(path) as f:
            message, code = json.load(f)
    except (OSError, ValueError, TypeError):
        return None
    return DeepconvError(message, code)


def _evaluate_shard(fabric, job, loop: tuple, progress: bool, agreed: str) -> tuple:
    """("rows", rows) on rank 0 (None elsewhere), or ("error", message, exit code) when any rank failed; the error
    is also written to `agreed` first (by each rank, atomically): a process group torn down as the processes exit
    can abort one of them (gloo: a peer's connection closed), and the parent then still reports the real cause."""
    from deepconv_cli.evaluation.rows import make_rows, update_rows
    from deepconv_cli.training.resources import set_threads

    _die_with_parent()
    set_threads(job.num_workers, fabric.world_size)
    try:
        shard = _shard_posteriors(fabric, job, loop, progress)
        error = None
    except DeepconvError as e:
        shard, error = None, (str(e), e.code)
    errors = [None] * fabric.world_size
    dist.all_gather_object(errors, error)  # every rank learns of a failure before any waits on a gather
    if first := next((e for e in errors if e is not None), None):
        mine = f"{agreed}.{fabric.global_rank}"
        with open(mine, "w") as f:
            json.dump(list(first), f)
        os.replace(mine, agreed)
        return ("error", *first)
    members, keys, ids, parts, seconds = shard
    total = len(job.indices)
    gathered = {key: gather_by_index(ids, parts[key].to(fabric.device), total).cpu() for key in keys}  # same order
    slowest = fabric.all_reduce(torch.tensor(list(seconds.values()), dtype=torch.float64, device=fabric.device),
                                reduce_op="max")
    if fabric.global_rank != 0:
        return None
    rows = make_rows(members, job.method)
    update_rows(rows, gathered, job.targets())
    seconds = dict(zip(seconds, slowest.cpu().tolist()))
    return ("rows", [row.result(job.flip, total, seconds) for row in rows.values()])


def _shard_posteriors(fabric, job, loop: tuple, progress: bool) -> tuple:
    """This rank's members, row keys, image positions, per-row posteriors and forward seconds."""
    from deepconv_cli.evaluation.rows import make_rows

    load_members, run_chunks = loop
    members = load_members(job.ckpts, job.scales, fabric.device)
    keys = list(make_rows(members, job.method))
    positions: list[torch.Tensor] = []
    parts: dict[tuple[str, str], list[torch.Tensor]] = {key: [] for key in keys}

    def keep(ids: torch.Tensor, target: torch.Tensor, posteriors: dict) -> None:
        positions.append(ids)
        for key, p in posteriors.items():
            parts[key].append(p)

    sampler = UnpaddedDistributedSampler(job.indices, num_replicas=fabric.world_size, rank=fabric.global_rank)
    seconds = run_chunks(members, job, keep, sampler, progress and fabric.global_rank == 0)
    classes = members[0].meta.num_classes
    ids = torch.cat(positions) if positions else torch.zeros(0, dtype=torch.long)
    values = {key: torch.cat(parts[key]) if parts[key] else torch.zeros(0, classes) for key in keys}
    return members, keys, ids, values, seconds
