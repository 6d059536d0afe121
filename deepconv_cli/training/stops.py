"""The callbacks that stop a run cleanly, reading the device only on logging steps.

- `StopOnSignal` turns SIGTERM, SIGUSR1 (SLURM's pre-emption / time-limit warning) and Ctrl-C (SIGINT) into a
  checkpoint at the next optimisation-step boundary, then exit 143 (130 for Ctrl-C); a second Ctrl-C aborts at
  once. One process reads its own flag every step (no device work); several processes agree every
  `log_every_n_steps` steps (one collective then, not every step).
- `NonFiniteGuard` checks every gradient on the device and reads the verdict every `log_every_n_steps` steps and
  before any checkpoint is written: training stops within N steps of a non-finite gradient, and no checkpoint
  holding its effect is ever written.

Neither waits for the device between logging steps: a GPU's queue is never drained for them.
"""

import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from deepconv_cli.compat.lightning import should_update_logs
from deepconv_cli.errors import INTERRUPTED, DeepconvError, failure

EXIT_SIGNALLED = 143  # 128 + SIGTERM, what a shell reports for a process ended by SIGTERM
EXIT_INTERRUPTED = INTERRUPTED  # 128 + SIGINT: Ctrl-C
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
    return should_update_logs(trainer)


def reading_step(trainer: L.Trainer) -> bool:
    """True on the batches where the host may wait for the device: logging steps and the epoch's last batch."""
    return logging_step(trainer) or bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


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
    `log_every_n_steps` steps (one all-reduce then, none in between), so they all save the same step. Under
    SLURM, after SIGUSR1 rank 0 requeues the job (`scontrol requeue`), which then resumes. A signal that arrives
    in an epoch's last step stops after the next one, once the epoch's validation and end have run.
    Loader workers, which a terminal's Ctrl-C reaches too, leave the signal to the trainer: one line per signal.
    """

    def __init__(self, checkpoint: Path, command: str = "") -> None:
        self.checkpoint = Path(checkpoint)
        self.command = command  # the command line that resumes (empty: "the same command")
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._pid = os.getpid()

    def _handler(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._pid:
            return  # a loader worker (forked with this handler; a terminal's Ctrl-C reaches it too): the trainer stops
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            os.write(2, b"deepconv: interrupted again: aborted at once, nothing saved after the last checkpoint\n")
            os._exit(EXIT_INTERRUPTED)
        if self.received is None:
            self.received = signum
            if signum == signal.SIGINT:
                os.write(2, b"\nCtrl-C: finishing this step and saving last.ckpt (Ctrl-C again aborts at once)\n")

    def _install(self) -> None:
        self._pid = os.getpid()
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
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            # the epoch's validation and end first: Lightning resumes a checkpoint saved at the last batch in the
            # next epoch, so that epoch's validation, loss and learning-rate plateau check would never happen
            return
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # never stop between the micro-batches of one optimisation step
        if trainer.world_size == 1:
            if self.received is None:
                return
        elif not reading_step(trainer) or not trainer.strategy.reduce_boolean_decision(
            self.received is not None, all=False
        ):
            return
        trainer.save_checkpoint(self.checkpoint, weights_only=False)  # the whole state (and no log line about it)
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
