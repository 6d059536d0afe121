"""Training that loses nothing: atomic checkpoints, resume after kill -9, the random state in the checkpoint.

- `AtomicCheckpointIO` writes every checkpoint to a temporary file next to it, fsyncs and renames it into place,
  and keeps the previous last.ckpt as last.prev.ckpt. (Lightning's own writer stages the file in the system temp
  directory and moves it, which is a copy, and so not atomic, when that is another file system.)
- `resume_checkpoint` picks the newest readable of last.ckpt, last.prev.ckpt and best.ckpt, saying which
  unreadable file it passed over.
- `RngState` saves the random generators' state in the checkpoint and restores it, so a resumed run draws the
  same data order and augmentations as an uninterrupted one (exactly so on packed data, with any number of loader
  workers: data/packed.py).

Stopping on a signal or a non-finite gradient: training/stops.py.
"""

import errno
import random
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

from deepconv_cli.errors import failure
from deepconv_cli.files import WriteError, remove_stale_temp_files, staged_file, write_problem

BACKUP_SUFFIX = ".prev"


def backup_path(path: Path) -> Path:
    """last.ckpt -> last.prev.ckpt"""
    return path.with_name(path.stem + BACKUP_SUFFIX + path.suffix)


def tensor_bytes(obj: Any) -> int:
    """Bytes of tensor data in a (nested) checkpoint: about the size torch.save writes."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(v) for v in obj)
    return 0


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save through `files.staged_file` (temporary file in the target folder, fsync, rename); the old
    `keep_previous` files survive as *.prev.ckpt. A full disk is one line naming the path and the space needed,
    and leaves the previous checkpoint as it was. Temporary files of killed writers are removed first."""

    def __init__(self, keep_previous: tuple[str, ...] = ("last.ckpt",)) -> None:
        self.keep_previous = keep_previous
        self._cleaned: set[Path] = set()

    def write(self, checkpoint: dict[str, Any], file: BinaryIO) -> None:
        """Serialise `checkpoint` into the open temporary file (a seam for fault-injection tests)."""
        torch.save(checkpoint, file)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        path = Path(path)
        if path.parent not in self._cleaned:
            remove_stale_temp_files(path.parent)
            self._cleaned.add(path.parent)
        backup = backup_path(path) if path.name in self.keep_previous else None
        try:
            with staged_file(path, backup=backup) as tmp, open(tmp, "wb") as f:
                self.write(checkpoint, f)
        except WriteError as e:
            cause = e.__context__ if isinstance(e.__context__, OSError) else None
            if cause is not None and cause.errno in (errno.ENOSPC, errno.EDQUOT):
                raise failure(write_problem(path, cause, tensor_bytes(checkpoint))) from None
            raise failure(str(e)) from None
        except OSError as e:
            raise failure(write_problem(path, e, tensor_bytes(checkpoint))) from None


def checkpoint_problem(path: Path) -> str | None:
    """None when `path` is a complete torch zip archive (every member's CRC checked), else what is wrong."""
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith("data.pkl") for name in archive.namelist()):
                return "no data.pkl inside: not a torch checkpoint"
            broken = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        return f"truncated or not a checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    return f"corrupt member {broken}" if broken else None


def resume_checkpoint(run_dir: Path, report: bool = True) -> Path | None:
    """The checkpoint a re-run continues from: the first complete one of last, last.prev, best (None: start).

    Temporary files that a killed writer left in the run directory are removed first (by the process that
    reports, rank 0: the one that writes checkpoints)."""
    if report and run_dir.is_dir():
        remove_stale_temp_files(run_dir)
    last = run_dir / "last.ckpt"
    for candidate in (last, backup_path(last), run_dir / "best.ckpt"):
        if not candidate.is_file():
            continue
        problem = checkpoint_problem(candidate)
        if problem is None:
            return candidate
        if report:
            print(
                f"warning: cannot resume from {candidate}: {problem}; trying the previous checkpoint", file=sys.stderr
            )
    return None


def _rng_state() -> dict:
    numpy_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        # numpy's array as a tensor, so checkpoints stay loadable with torch.load(weights_only=True)
        "numpy": (numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RngState(Callback):
    """Random generators' state into every checkpoint, and back on resume (before the first epoch's data order).

    A validation loader with persistent workers draws its workers' base seed from the global generator once, when
    its iterator is first created: in an uninterrupted run during the sanity check (which Lightning runs with the
    generator isolated) or at the first validation. A resumed run skips the sanity check, so its first validation
    would draw that seed again, and every batch after it would differ (other dropout masks and colour shifts).
    Whether the iterator existed is saved with the state; if it did, the resumed run's first validation leaves the
    generator as it found it."""

    def __init__(self) -> None:
        self.val_started = False  # this run (or the one it resumes) created the persistent validation iterator
        self._restore_at_validation: torch.Tensor | None = None
        self._pending = False

    def state_dict(self) -> dict:
        return _rng_state() | {"val_loader_started": self.val_started}

    def load_state_dict(self, state_dict: dict) -> None:
        _set_rng_state(state_dict)
        self.val_started = self._pending = bool(state_dict.get("val_loader_started"))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        if self._pending:  # the state the validation that may follow this step must find
            self._restore_at_validation = torch.get_rng_state()

    def on_validation_start(self, trainer, module) -> None:  # after Lightning created the validation iterator
        if not getattr(trainer.val_dataloaders, "persistent_workers", False):
            return  # a new iterator (and seed) every validation, in the uninterrupted run too
        if self._pending and self._restore_at_validation is not None:
            torch.set_rng_state(self._restore_at_validation)
        self._pending, self._restore_at_validation = False, None
        self.val_started = True


class EpochSoFar(Callback):
    """The running epoch's training loss (the module's `train_loss` metric) and seconds into every checkpoint, and
    back on a mid-epoch resume, so the epoch's `train/loss_epoch` and `time/train_seconds` cover the whole epoch,
    not only the steps after the resume. (Throughput keeps its own counts: training/throughput.py.)"""

    def __init__(self) -> None:
        self.module: Any = None
        self._loaded: dict | None = None

    def setup(self, trainer, module, stage: str) -> None:
        self.module = module

    def state_dict(self) -> dict:
        metric = getattr(self.module, "train_loss", None)
        started = getattr(self.module, "epoch_started", None)
        state: dict = {"seconds": time.perf_counter() - started if started is not None else 0.0}
        if metric is not None:
            state["train_loss"] = {name: value.detach().cpu() for name, value in metric.metric_state.items()}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self._loaded = state_dict

    def on_train_epoch_start(self, trainer, module) -> None:
        self._loaded = None  # a new epoch starts (Lightning skips this hook when it resumes one mid-way)

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if self._loaded is None:
            return
        loaded, self._loaded = self._loaded, None
        metric = getattr(module, "train_loss", None)
        if metric is not None and "train_loss" in loaded:  # merged into the fresh (zero) metric: the saved sums
            metric.merge_state({name: value.to(module.device) for name, value in loaded["train_loss"].items()})
        if hasattr(module, "epoch_started"):
            module.epoch_started = time.perf_counter() - float(loaded["seconds"])
