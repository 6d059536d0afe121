"""Ctrl-C during `deepconv data pack`: one line and exit 130, not litdata's exit 0 and a traceback per process.

litdata.optimize answers Ctrl-C with os._exit(0), as if packing had finished, and each packing process, which
gets the terminal's Ctrl-C too, prints a KeyboardInterrupt traceback. While it runs here, every process it starts
inherits an ignored SIGINT, litdata's handler is replaced by one that raises KeyboardInterrupt, and on Ctrl-C the
processes are asked to stop through litdata's stop queues, then ended with their own helper processes. A packing
process also ends when `data pack` itself is killed (`end_with_parent`).
"""

import os
import signal
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

GRACE_SECONDS = 5.0  # a packing process busy with an item finishes it and stops; one waiting for work is ended
TRACKER_WARNING = "ignore:resource_tracker:UserWarning"


def quiet_resource_tracker() -> None:
    """Packing processes ended on Ctrl-C leave their helper queues' semaphores behind, and multiprocessing's resource
    tracker, which removes them, also warns about each; it takes its warning options from this interpreter's, so
    this must run before the first process starts (the bad-image scan's or litdata's)."""
    if TRACKER_WARNING not in sys.warnoptions:
        sys.warnoptions.append(TRACKER_WARNING)


_PARENT_WATCHED = False


def end_with_parent() -> None:
    """In a packing process (once, from its first item): on Linux, be killed when the process that started it dies,
    so a kill -9 of `data pack` leaves no packing process writing into OUT for another minute."""
    global _PARENT_WATCHED
    if _PARENT_WATCHED or not sys.platform.startswith("linux"):
        return
    _PARENT_WATCHED = True
    import ctypes
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is None:
        return  # not a child process (litdata with 0 workers packs in this one)
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent.pid:  # the parent died before the line above
        os._exit(1)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def descendants(pid: int) -> list[int]:
    """The processes below `pid`, from Linux's /proc (none where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def _stop(started: list, owners: list) -> None:
    for queue in [q for owner in owners for q in (getattr(owner, "stop_queues", None) or [])]:
        queue.put(None)
    deadline = time.monotonic() + GRACE_SECONDS
    for process in started:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in [p for p in started if p.is_alive()]:
        for pid in descendants(process.pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        process.terminate()
        process.join(GRACE_SECONDS)


@contextmanager
def ctrl_c_stops_packing():
    """Around litdata.optimize: Ctrl-C raises KeyboardInterrupt here once the packing processes are stopped."""
    from multiprocessing.process import BaseProcess

    start, previous, started, owners = BaseProcess.start, signal.getsignal(signal.SIGINT), [], []

    def start_without_ctrl_c(process) -> None:
        owner = getattr(signal.getsignal(signal.SIGINT), "__self__", None)  # litdata's DataProcessor, first time
        if owner is not None:
            owners.append(owner)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # an ignored signal stays ignored in the new process
        try:
            start(process)
            started.append(process)
        finally:
            signal.signal(signal.SIGINT, _raise_interrupt)

    BaseProcess.start = start_without_ctrl_c
    try:
        yield
    except KeyboardInterrupt:
        _stop(started, owners)
        raise
    finally:
        BaseProcess.start = start
        signal.signal(signal.SIGINT, previous)
