"""The one fit sequence of a built run (training/run.py's `build_cli`): resume from RUN_DIR/last.ckpt (refusing
another run's checkpoint), "already finished" for a completed run, the metrics history kept across resumes, Ctrl-C
before training as one line, the finished state recorded, the best checkpoint reported."""

import signal
from pathlib import Path

from lightning.pytorch.utilities.exceptions import SIGTERMException

from deepconv_cli.errors import DeepconvError, usage
from deepconv_cli.models.checkpoint import ModelMeta, read_checkpoint
from deepconv_cli.training.callbacks import StopAfterLrDrops
from deepconv_cli.training.faults import resume_checkpoint
from deepconv_cli.training.run import DeepconvCLI, launcher_rank_zero
from deepconv_cli.training.run_dir import clear_finished, finished_state, mark_finished, read_history, write_history
from deepconv_cli.training.stops import EXIT_INTERRUPTED, EXIT_SIGNALLED


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


def _interrupted_before_training(signum, frame) -> None:
    raise DeepconvError("interrupted (Ctrl-C) before training started: nothing to save", EXIT_INTERRUPTED)


def fit(cli: DeepconvCLI) -> None:
    try:
        _fit(cli, cli.trainer.is_global_zero and launcher_rank_zero())
        _leave_process_group()
    finally:
        cli.lock.release()


def _leave_process_group() -> None:
    """Every rank leaves the process group together, in Python. A rank that exited while another still used the group
    could abort in C++ teardown under load ("terminate called without an active exception"), and the other node's
    torchrun then waited at its exit barrier for a node that had failed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _fit(cli: DeepconvCLI, rank_zero: bool) -> None:
    trainer = cli.trainer
    if not cli.config.get("resume") and rank_zero:
        clear_finished(cli.run_dir)
    ckpt = resume_checkpoint(cli.run_dir, report=trainer.is_global_zero) if cli.config.get("resume") else None
    if ckpt:
        saved = read_checkpoint(ckpt)
        check_same_run(ckpt, saved, cli.model.meta)
        why = finished_already(cli.run_dir, saved, trainer.max_epochs)
        if why:
            if trainer.is_global_zero:
                print(f"{cli.run_dir} already finished: {why}; nothing changed (--resume false trains it again from "
                      "scratch)")
            return
        if rank_zero:
            clear_finished(cli.run_dir)
            history = read_history(cli.run_dir, int(saved.get("global_step", 0)))
            if history and trainer.logger is not None and hasattr(trainer.logger.experiment, "metrics_keys"):
                write_history(cli.run_dir, *history)  # after the logger started (and deleted the old file)
                trainer.logger.experiment.metrics_keys = list(history[0])
    if ckpt and trainer.is_global_zero:
        print(f"resuming from {ckpt}")
    # Ctrl-C before StopOnSignal takes over (data scan, statistics, setup): one line, exit 130, instead of
    # Lightning's KeyboardInterrupt handler (its banner, exit 1); StopOnSignal restores this handler at teardown
    previous = signal.signal(signal.SIGINT, _interrupted_before_training)
    try:
        if trainer.strategy.launcher is not None and trainer.is_global_zero:
            cli.datamodule.prepare_data()  # scan images and compute statistics before starting the other processes
        trainer.fit(cli.model, cli.datamodule, ckpt_path=str(ckpt) if ckpt else None)
    except SIGTERMException:  # Lightning's handler caught the signal before training began: nothing to save
        raise DeepconvError("stopped by SIGTERM before training started", EXIT_SIGNALLED) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if not trainer.is_global_zero:
        return
    stop = next((c for c in trainer.callbacks if isinstance(c, StopAfterLrDrops)), None)
    if not trainer.interrupted and rank_zero:
        if stop is not None and stop.stopped:
            mark_finished(cli.run_dir, trainer.current_epoch, "lr_drops")
        elif trainer.max_epochs is not None and trainer.current_epoch >= trainer.max_epochs > 0:
            mark_finished(cli.run_dir, trainer.current_epoch, "max_epochs")
    best = trainer.checkpoint_callback
    score = getattr(best, "best_model_score", None)
    if score is not None:
        print(f"{cli.BEST} {float(score):.2f}% -> {best.best_model_path}")
