"""A training run's life in its run directory, owned by one object: the lock, the resume decision, the finished
state, and the lock's release however the run ends.

training/fit.py's `fit` opens a `RunLifecycle` around the whole fit sequence; nothing before it writes into the run
directory (parsing and building the LightningCLI only read):

    with RunLifecycle(run_dir, owner=...) as run:             # the lock: a second training there is refused
        ckpt = run.resume_point(resume, meta, max_epochs)       # None: from scratch; run.done: nothing to do
        trainer.fit(..., ckpt_path=ckpt)
        run.finish(trainer)                                     # RUN_DIR/.finished.json

- The lock is RUN_DIR/.lock, an operating-system file lock (`filelock`: flock on Linux and macOS) held by the run's
  launching process (`launcher_rank_zero`; the processes a DDP launcher starts hold nothing). The holder writes its
  pid, host and start time into the file, so a second training into the folder is one line naming it, exit 1.
- Release: leaving the `with` block releases the lock after a normal end, an exception, Ctrl-C or SIGTERM (which
  training/stops.py and fit.py turn into exceptions); a process killed by SIGKILL, the OOM killer or a crash loses
  it with its open files (the kernel's doing), so a lock is never stale and nothing is left to clean up.
- Resume: `resume_point` takes the newest complete checkpoint (training/faults.py `resume_checkpoint`), refuses
  one of another run (architecture, width, crop or classes differ) and says "already finished" for a completed run.
- Finished: `finish` records how a completed run ended (training/run_dir.py), so that re-running it does nothing.
"""

import json
import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from deepconv_cli.errors import failure, usage
from deepconv_cli.models.checkpoint import ModelMeta, read_checkpoint
from deepconv_cli.training.callbacks import StopAfterLrDrops
from deepconv_cli.training.faults import resume_checkpoint
from deepconv_cli.training.run_dir import clear_finished, finished_state, mark_finished

LOCK = ".lock"


def launcher_rank_zero() -> bool:
    """The one process of a (multi-node, multi-device) training that owns the run directory's lock and files."""
    return all(os.environ.get(name, "0") == "0" for name in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"))


def _write_owner(fd: int) -> None:
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")})
    os.ftruncate(fd, 0)
    os.pwrite(fd, record.encode(), 0)


class RunLifecycle:
    """The run directory's lock, resume decision and finished state for one fit sequence (a context manager)."""

    def __init__(self, run_dir: Path, owner: bool = True) -> None:
        self.run_dir, self.owner = Path(run_dir), owner
        self.lock = FileLock(self.run_dir / LOCK, timeout=0, on_acquired=_write_owner)
        self.done: str | None = None  # why re-running has nothing to do, set by resume_point
        self.saved: dict = {}  # the resumed checkpoint, read by resume_point

    def __enter__(self) -> "RunLifecycle":
        if self.owner:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            try:
                self.lock.acquire()
            except Timeout:
                raise failure(f"{self.run_dir} is in use by another training ({self.holder()}); wait for it to end or "
                              "choose another --trainer.default_root_dir") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.lock.is_locked:
            self.lock.release()

    def holder(self) -> str:
        try:
            owner = json.loads((self.run_dir / LOCK).read_text())
            return f"pid {owner['pid']} on {owner['host']} since {owner['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "its owner has not written its name yet"

    def resume_point(self, resume: bool, meta: ModelMeta, max_epochs: int | None, report: bool = True) -> Path | None:
        """The checkpoint this run continues from (None: it starts from scratch, or `done` says it has finished)."""
        if not resume:
            if self.owner:
                clear_finished(self.run_dir)
            return None
        ckpt = resume_checkpoint(self.run_dir, report=report)
        if ckpt is None:
            return None
        self.saved = read_checkpoint(ckpt)
        check_same_run(ckpt, self.saved, meta)
        self.done = finished_already(self.run_dir, self.saved, max_epochs)
        if self.done:
            if report:
                print(f"{self.run_dir} already finished: {self.done}; nothing changed (--resume false trains it again "
                      "from scratch)")
            return None
        if self.owner:
            clear_finished(self.run_dir)
        if report:
            print(f"resuming from {ckpt}")
        return ckpt

    def finish(self, trainer) -> None:
        """Record a completed run's end: the plateau after its last learning-rate drop, or max_epochs."""
        if trainer.interrupted or not self.owner:
            return
        stop = next((c for c in trainer.callbacks if isinstance(c, StopAfterLrDrops)), None)
        if stop is not None and stop.stopped:
            mark_finished(self.run_dir, trainer.current_epoch, "lr_drops")
        elif trainer.max_epochs is not None and trainer.current_epoch >= trainer.max_epochs > 0:
            mark_finished(self.run_dir, trainer.current_epoch, "max_epochs")


def check_same_run(ckpt: Path, saved: dict, meta: ModelMeta) -> None:
    """Resuming continues *this* run: a last.ckpt of another architecture, width, crop or class list is an error."""
    saved_meta = ModelMeta.from_dict(saved["deepconv"])
    for key in ("arch", "width", "crop_size", "classes"):
        if getattr(saved_meta, key) != getattr(meta, key):
            raise usage(
                f"{ckpt} belongs to another run ({key} differs: {str(getattr(saved_meta, key))[:60]} there, "
                f"{str(getattr(meta, key))[:60]} here); choose another --trainer.default_root_dir "
                "or pass --resume false"
            )


def finished_already(run_dir: Path, saved: dict, max_epochs: int | None) -> str | None:
    """Why re-running this command has nothing to do (None: it continues); a smaller max_epochs is an error."""
    done = finished_state(run_dir) or {}
    epochs = int(done.get("epochs", saved.get("epoch", 0)))
    if done.get("reason") == "lr_drops":
        return f"it stopped after {epochs} epochs at the plateau after its last learning-rate drop"
    if max_epochs is None or max_epochs < 0:
        return None
    if (done and max_epochs < epochs) or (not done and saved.get("epoch", 0) >= max_epochs):
        raise usage(f"{run_dir} already trained {epochs} epochs, more than --trainer.max_epochs {max_epochs}; pass "
                    "--resume false to train it again from scratch, or a larger max_epochs to extend it")
    if done and max_epochs == epochs:
        return f"it trained its {epochs} epochs (max_epochs)"
    return None
