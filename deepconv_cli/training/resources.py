"""The resources a deepconv process computes with: its CPU threads and its device.

CPU threads: intra-op threads = usable cores minus loader workers; each loader worker gets 1.

PyTorch's default (one intra-op thread per core) plus image-decoding workers on the same cores oversubscribes
them: on 2 shared cores `evaluate --method multi-crop --limit 10` took 53.6 s with the default and 3.8 s with
one thread. A user's own OMP_NUM_THREADS is respected. DataLoader workers already run torch with 1 thread
(torch.utils.data sets it in every worker); `worker_threads` is what they get.
"""

import os

from deepconv_cli.errors import usage
from deepconv_cli.files import reason

worker_threads = 1


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset, cgroups or SLURM)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def intra_op_threads(num_workers: int, processes: int = 1) -> int:
    """Threads for the main process: what the loader workers (and other training processes) leave free."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, usable_cores() // max(1, processes) - max(0, num_workers))


def set_threads(num_workers: int, processes: int = 1) -> int:
    """Set torch's intra-op threads for a process that feeds itself with `num_workers` loader workers."""
    import torch

    threads = intra_op_threads(num_workers, processes)
    torch.set_num_threads(threads)
    return threads


def workers_warning(num_workers: int, processes: int = 1) -> str | None:
    """A one-line warning when the loader workers alone outnumber the usable cores."""
    cores = usable_cores()
    if num_workers * max(1, processes) > cores:
        return (f"warning: {num_workers} loader workers x {processes} process(es) on {cores} usable CPU cores: they"
                f" compete with training for the cores; --data.num_workers {max(1, cores // max(1, processes) - 1)}"
                " or fewer is faster here")
    return None


def pick_device(device: str):
    """The torch device for `--device` (auto: cuda when available); one that cannot be used is a usage error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as e:
        raise usage(f"device {device!r} is not available: {reason(e)}") from None
    return dev
