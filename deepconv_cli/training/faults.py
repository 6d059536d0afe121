"""Training that loses nothing: atomic checkpoints, resume after kill -9, SIGTERM/SIGUSR1, non-finite losses.

- `AtomicCheckpointIO` writes every checkpoint to a temporary file next to it, fsyncs and renames it into place,
  and keeps the previous last.ckpt as last.prev.ckpt. (Lightning's own writer stages the file in the system temp
  directory and moves it, which is a copy, and so not atomic, when that is another file system.)
- `resume_checkpoint` picks the newest readable of last.ckpt, last.prev.ckpt and best.ckpt, saying which
  unreadable file it passed over.
- `StopOnSignal` turns SIGTERM, SIGUSR1 (SLURM's pre-emption / time-limit warning) and Ctrl-C (SIGINT) into a
  checkpoint at the next optimisation-step boundary, then exit 143 (130 for Ctrl-C); a second Ctrl-C aborts at
  once. One process reads its own flag every step (no device work); several processes agree every
  `log_every_n_steps` steps (one collective then, not every step).
- `NonFiniteGuard` checks every gradient on the device and reads the verdict every `log_every_n_steps` steps and
  before any checkpoint is written: training stops within N steps of a non-finite gradient, and no checkpoint
  holding its effect is ever written.

Neither waits for the device between logging steps: a GPU's queue is never drained for them.
- `RngState` saves the random generators' state in the checkpoint and restores it, so a resumed run draws the
  same data order and augmentations as an uninterrupted one (exactly so with num_workers 0).
"""

import errno
import os
import random
import shlex
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

from deepconv_cli.errors import DeepconvError, failure
from deepconv_cli.files import WriteError, remove_stale_temp_files, staged_file, write_problem

EXIT_SIGNALLED = 143  # 128 + SIGTERM, what a shell reports for a process ended by SIGTERM
EXIT_INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C
BACKUP_SUFFIX = ".prev"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


def exit_code(signum: int | None) -> int:
    """130 for Ctrl-C, 143 for SIGTERM and SIGUSR1 (SLURM requeues those)."""
    return EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_SIGNALLED


def resume_command(prog: str, args: list[str] | None) -> str:
    """The command line a signalled run prints for resuming it: `prog` and its arguments, shell-quoted."""
    return shlex.join([*prog.split(), *(args or [])]) if args is not None else ""


def logging_step(trainer: L.Trainer) -> bool:
    """True during the training batches whose metrics the logger writes (every `log_every_n_steps`): the steps on
    which the host reads the device anyway. Lightning's own rule, so the module, the progress bar and the guards
    agree with what the logger writes."""
    return bool(trainer._logger_connector.should_update_logs)


def reading_step(trainer: L.Trainer) -> bool:
    """True on the batches where the host may wait for the device: logging steps and the epoch's last batch."""
    return logging_step(trainer) or bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


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


def _rank_zero_error(trainer: L.Trainer, error: DeepconvError) -> BaseException:
    """The error for rank 0 to print; the other processes leave quietly with the same exit code."""
    return error if trainer.is_global_zero else SystemExit(error.code)


class StopOnSignal(Callback):
    """SIGTERM / SIGUSR1 / Ctrl-C: finish the current optimisation step, save RUN_DIR/last.ckpt, print one line
    naming it and the command that resumes, exit 143 (Ctrl-C: 130). A second Ctrl-C aborts at once (exit 130).

    Handlers are (re)installed when training starts, replacing Lightning's own: its SIGTERM handler runs a
    collective inside the signal handler, its SLURM SIGUSR1 handler saves in the middle of a step, and Ctrl-C
    would otherwise be Lightning's KeyboardInterrupt (exit 1, nothing saved). A single process reads its flag at
    every step boundary (a Python attribute: no device work). Several processes decide together every
    `log_every_n_steps` steps and at the epoch's end (one all-reduce then, none in between), so they all save the
    same step. Under SLURM, after SIGUSR1 rank 0 requeues the job (`scontrol requeue`), which then resumes.
    """

    def __init__(self, checkpoint: Path, command: str = "") -> None:
        self.checkpoint = Path(checkpoint)
        self.command = command  # the command line that resumes (empty: "the same command")
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            os.write(2, b"deepconv: interrupted again: aborted at once, nothing saved after the last checkpoint\n")
            os._exit(EXIT_INTERRUPTED)
        if self.received is None:
            self.received = signum
            if signum == signal.SIGINT:
                os.write(2, b"\nCtrl-C: finishing this step and saving last.ckpt (Ctrl-C again aborts at once)\n")

    def _install(self) -> None:
        for signum in STOP_SIGNALS:
            previous = signal.signal(signum, self._handler)
            self._previous.setdefault(signum, previous)

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self._install()  # before Lightning registers its handlers: it then leaves SIGUSR1 to us

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._install()  # after Lightning registered its SIGTERM handler
        if self.received is not None and trainer.world_size == 1:
            name = signal.Signals(self.received).name
            raise DeepconvError(f"stopped by {name} before training started: nothing to save", exit_code(self.received))

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    def teardown(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if (
            (batch_idx + 1) % trainer.accumulate_grad_batches
            and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        ):
            return  # never stop between the micro-batches of one optimisation step
        if trainer.world_size == 1:
            if self.received is None:
                return
        elif not reading_step(trainer) or not trainer.strategy.reduce_boolean_decision(
            self.received is not None, all=False
        ):
            return
        trainer.save_checkpoint(self.checkpoint)
        name = signal.Signals(self.received).name if self.received else "a signal on another process"
        requeued = self._requeue() if self.received == signal.SIGUSR1 and trainer.is_global_zero else ""
        again = f"`{self.command}`" if self.command else "the same command"
        raise _rank_zero_error(
            trainer,
            DeepconvError(
                f"stopped by {name} at epoch {trainer.current_epoch}, step {trainer.global_step}: saved"
                f" {self.checkpoint}; run {again} again to resume{requeued}",
                exit_code(self.received),
            ),
        )

    @staticmethod
    def _requeue() -> str:
        job = os.environ.get("SLURM_JOB_ID")
        if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
            job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        if not job:
            return ""
        try:
            command = ["scontrol", "requeue", job]
            done = subprocess.run(command, check=False, capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            done = False
        return f" (SLURM job {job} {'requeued' if done else 'could not be requeued'})"


class NonFiniteGuard(Callback):
    """Stop with one line (exit 1) when a gradient (fp16 with a scaler: the loss) turns NaN/inf; no checkpoint
    holding its effect is written.

    The check runs on the device at every optimisation step and is accumulated there (the first bad step and its
    loss); the host reads it every `log_every_n_steps` steps, at the epoch's last batch and before any checkpoint
    is saved, so it never waits for the device in between. Gradients are identical on every process after DDP's
    all-reduce, so all processes stop at the same reading. With a gradient scaler (fp16 mixed precision) inf
    gradients are routine (the scaler skips that step), so there the loss is checked, agreed across processes.
    """

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = Path(checkpoint)
        self.loss: torch.Tensor | None = None
        self.first_bad: torch.Tensor | None = None  # on the device: global step of the first bad one, -1: none
        self.bad_loss: torch.Tensor | None = None

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.first_bad = torch.full((), -1, dtype=torch.long, device=module.device)
        self.bad_loss = torch.full((), float("nan"), device=module.device)

    def on_before_backward(self, trainer: L.Trainer, module: L.LightningModule, loss: torch.Tensor) -> None:
        self.loss = loss.detach()

    def on_before_optimizer_step(self, trainer: L.Trainer, module: L.LightningModule, optimizer) -> None:
        if self.first_bad is None:
            self.on_train_start(trainer, module)
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            if self.loss is None:
                return
            bad = ~torch.isfinite(self.loss)
        else:
            grads = [p.grad for p in module.parameters() if p.grad is not None]
            if not grads:
                return
            bad = ~torch.isfinite(torch.nn.utils.get_total_norm(grads))
        new = bad & (self.first_bad < 0)  # all on the device: no wait for it
        self.first_bad = torch.where(new, torch.full_like(self.first_bad, trainer.global_step), self.first_bad)
        if self.loss is not None:
            self.bad_loss = torch.where(new, self.loss.float().to(self.bad_loss.device), self.bad_loss)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        if reading_step(trainer):
            self.check(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        self.check(trainer)  # before the file is written: a checkpoint never holds a non-finite update

    def check(self, trainer: L.Trainer) -> None:
        """Read the device-side verdict (the one place the host waits for it); stop when a step went bad."""
        if self.first_bad is None:
            return
        step = int(self.first_bad)
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            step = step if trainer.strategy.reduce_boolean_decision(step >= 0, all=False) else -1
        if step < 0:
            return
        loss = float(self.bad_loss)
        kept = f"{self.checkpoint} (untouched)" if self.checkpoint.is_file() else "none yet"
        raise _rank_zero_error(
            trainer,
            failure(
                f"non-finite {'loss' if not np.isfinite(loss) else 'gradient'} (loss {loss}) at epoch"
                f" {trainer.current_epoch}, step {step}: training stopped and nothing after it saved;"
                f" last good checkpoint: {kept}; try a lower --model.lr or another --model.init"
            ),
        )


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
    """Random generators' state into every checkpoint, and back on resume (before the first epoch's data order)."""

    def state_dict(self) -> dict:
        return _rng_state()

    def load_state_dict(self, state_dict: dict) -> None:
        _set_rng_state(state_dict)
