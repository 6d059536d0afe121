"""The one fit sequence of a built run (training/run.py's `build_cli`), inside the run's lifecycle
(training/lifecycle.py: the run directory's lock, resume from RUN_DIR/last.ckpt, "already finished", the finished
state): the metrics history kept across resumes, Ctrl-C before training as one line, the best checkpoint reported."""

import signal

from lightning.pytorch.utilities.exceptions import SIGTERMException

from deepconv_cli.errors import DeepconvError
from deepconv_cli.training.lifecycle import RunLifecycle, launcher_rank_zero
from deepconv_cli.training.run import DeepconvCLI
from deepconv_cli.training.run_dir import read_history, write_history
from deepconv_cli.training.stops import EXIT_INTERRUPTED, EXIT_SIGNALLED


def _interrupted_before_training(signum, frame) -> None:
    raise DeepconvError("interrupted (Ctrl-C) before training started: nothing to save", EXIT_INTERRUPTED)


def fit(cli: DeepconvCLI) -> None:
    with RunLifecycle(cli.run_dir, owner=cli.trainer.is_global_zero and launcher_rank_zero()) as run:
        _fit(cli, run)
        _leave_process_group()


def _leave_process_group() -> None:
    """Every rank leaves the process group together, in Python. A rank that exited while another still used the group
    could abort in C++ teardown under load ("terminate called without an active exception"), and the other node's
    torchrun then waited at its exit barrier for a node that had failed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _fit(cli: DeepconvCLI, run: RunLifecycle) -> None:
    trainer = cli.trainer
    ckpt = run.resume_point(bool(cli.config.get("resume")), cli.model.meta, trainer.max_epochs, trainer.is_global_zero)
    if run.done:
        return
    if ckpt and run.owner:
        history = read_history(cli.run_dir, int(run.saved.get("global_step", 0)))
        if history and trainer.logger is not None and hasattr(trainer.logger.experiment, "metrics_keys"):
            write_history(cli.run_dir, *history)  # after the logger started (and deleted the old file)
            trainer.logger.experiment.metrics_keys = list(history[0])
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
    run.finish(trainer)
    best = trainer.checkpoint_callback
    score = getattr(best, "best_model_score", None)
    if score is not None:
        print(f"{cli.BEST} {float(score):.2f}% -> {best.best_model_path}")
