"""A training run's lifecycle, the same for `train`, `fine-tune` and `localise fit` (and their recipe stages).

`build_cli` makes the LightningCLI (`DeepconvCLI`, or a subclass such as the localiser's) with the paper's
defaults; instantiating its Trainer takes the run directory's lock (training/run_dir.py), adds the callbacks and
atomic checkpoints; `after_instantiate_classes` plans the batch across devices and sets the CPU thread budget
(training/resources.py). `fit` is the one fit sequence: resume from RUN_DIR/last.ckpt (refusing another run's
checkpoint), "already finished" for a completed run, the metrics history kept across resumes, the finished
state recorded, the best checkpoint reported.

`--trainer.strategy ddp --trainer.devices N [--trainer.num_nodes M]` trains data parallel with the same
optimisation batch (`data.batch_size`) as one device. Re-running the same command after a crash, kill -9,
SIGTERM or SLURM pre-emption continues from RUN_DIR/last.ckpt (see training/faults.py).
"""

import argparse
import atexit
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Literal

from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.errors import DeepconvError, one_line_usage, usage
from deepconv_cli.models.checkpoint import ModelMeta, read_checkpoint
from deepconv_cli.training.batching import plan_batches
from deepconv_cli.training.callbacks import (
    CurvesPNG,
    EpochProgressBar,
    RunCheckpoint,
    StopAfterLrDrops,
    SummaryWithoutFlops,
    ValidationCount,
    quiet_lightning_tips,
)
from deepconv_cli.training.faults import (
    EXIT_INTERRUPTED,
    EXIT_SIGNALLED,
    AtomicCheckpointIO,
    NonFiniteGuard,
    RngState,
    StopOnSignal,
    resume_checkpoint,
    resume_command,
)
from deepconv_cli.training.module import ClassifierModule
from deepconv_cli.training.resources import set_threads, workers_warning
from deepconv_cli.training.run_dir import (
    RunLock,
    clear_finished,
    finished_state,
    mark_finished,
    read_history,
    write_history,
)
from deepconv_cli.training.speed import DeepconvTrainer
from deepconv_cli.training.throughput import EpochThroughput

TRAINER_DEFAULTS = {"max_epochs": 74, "default_root_dir": "runs/default", "log_every_n_steps": 10}
TITLE = "deepconv {command}: train a network (VGG A-E, AlexNet, ZFNet, LeNet-5, NiN, GoogLeNet) with Lightning's " \
    "Trainer"


def underscore_names(argv: list[str]) -> list[str]:
    """`--data.batch-size 8` -> `--data.batch_size 8` (every option name; values untouched): LightningCLI's rule."""
    out = []
    for arg in argv:
        if arg.startswith("--") and arg != "--":
            name, eq, value = arg.partition("=")
            arg = "--" + name[2:].replace("-", "_") + eq + value
        out.append(arg)
    return out


class DeepconvCLI(LightningCLI):
    """LightningCLI wired for deepconv: data -> model links, the run directory, callbacks, batch planning."""

    BEST = "best val top-1 error"  # what `fit` reports of the best checkpoint's monitored score

    def __init__(self, *args, fine_tune: bool = False, **kwargs) -> None:
        self.fine_tune = fine_tune
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.crop_size", "model.crop_size")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.classes", "model.classes", apply_on="instantiate")
        parser.add_argument(
            "--resume", type=bool, default=True, help="continue from RUN_DIR/last.ckpt when it exists"
        )
        parser.add_argument("--curves_log_error", type=bool, default=False, help="curves.png: log-scale error axis")
        parser.add_argument("--last_every_n_steps", type=int, default=0, help="also write last.ckpt every N "
                            "optimisation steps (0: at epoch ends); packed data then resume mid-epoch exactly")
        if self.fine_tune:
            parser.add_argument("--init_from", type=str | None, default=None,
                                help="the trained checkpoint the network is initialised from (required)")
            parser.add_argument("--init_layers", type=Literal["paper", "all"] | None, default=None,
                                help="paper: A's first four convs + three FCs into the same positions (default "
                                "between architectures); all: every layer (default for the same architecture)")

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        self.command_line = resume_command(parser.prog, args)  # gpusync: what StopOnSignal prints to resume
        try:
            super().parse_arguments(parser, underscore_names(list(args)) if args is not None else args)
        except argparse.ArgumentError as e:
            known = ["--" + key for key in parser.get_defaults().keys()]  # noqa: SIM118 - a Namespace
            raise one_line_usage(e, known, parser.prog) from None

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, MisconfigurationException) as e:
            raise usage(str(e)) from None

    def instantiate_trainer(self, **kwargs):
        config = self._get(self.config_init, "trainer")
        self.run_dir = Path(config.get("default_root_dir") or ".")
        self.lock = RunLock(self.run_dir)
        if launcher_rank_zero():  # before the Trainer prints anything: a busy folder is the only line
            self.lock.acquire()
            atexit.register(self.lock.release)
        if config.get("logger") in (None, True):
            config["logger"] = CSVLogger(self.run_dir, name="", version="")
        last = self.run_dir / "last.ckpt"
        curves = CurvesPNG(log_error=bool(self.config.get("curves_log_error")))
        extra = [LearningRateMonitor("epoch"), curves, ValidationCount(), RngState(), EpochThroughput()]
        extra.append(StopAfterLrDrops(self.model.hparams.max_lr_drops, self.model.hparams.lr_drop_factor))
        extra += [NonFiniteGuard(last), StopOnSignal(last, self.command_line)]
        if config.get("enable_checkpointing", True) is not False:
            # two callbacks: Lightning's save_last only writes last.ckpt in epochs that improve on best.ckpt
            best = {"filename": "best", "monitor": "val/top1_error", "mode": "min"}
            steps = int(self.config.get("last_every_n_steps") or 0)
            mid_epoch = [{"filename": "last", "every_n_train_steps": steps}] if steps > 0 else []
            for which in (best, {"filename": "last"}, *mid_epoch):
                extra.append(RunCheckpoint(dirpath=self.run_dir, enable_version_counter=False, **which))
        if config.get("enable_progress_bar", True) is not False:
            extra.append(EpochProgressBar())
        if config.get("enable_model_summary", True) is not False:
            extra.append(SummaryWithoutFlops())
        config["callbacks"] = list(config.get("callbacks") or []) + extra
        plugins = config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, list | tuple) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            config["plugins"] = plugins + [AtomicCheckpointIO()]
        return super().instantiate_trainer(**kwargs)

    def after_instantiate_classes(self) -> None:
        data, trainer = self.datamodule, self.trainer
        per_device, accumulate = plan_batches(data.batch_size, data.micro_batch_size, trainer.world_size)
        data.per_device_batch, trainer.accumulate_grad_batches = per_device, accumulate
        data.run_dir = self.run_dir
        threads = set_threads(data.num_workers, trainer.num_devices)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # DDP processes and Lightning's own setting follow
        if trainer.is_global_zero:
            cpu = f"; {threads} CPU thread(s) + {data.num_workers} loader worker(s)"
            print(
                f"batch {data.batch_size} = {trainer.world_size} device(s) x {per_device} images"
                f" x {accumulate} accumulation step(s); run directory {self.run_dir}{cpu}"
            )
            if getattr(trainer, "precision_note", ""):
                print(trainer.precision_note)
            warning = workers_warning(data.num_workers, trainer.num_devices)
            if warning:
                print(warning, file=sys.stderr)

    def on_cpu(self) -> bool:
        return isinstance(self.trainer.accelerator, CPUAccelerator)


class ParseOnly:
    """Mixed into a LightningCLI: parse and type-check the command line (config files included) into `config`,
    build nothing, seed nothing, touch no file; how a recipe checks its training stages before any starts."""

    def _set_seed(self) -> None:
        pass

    def _add_instantiators(self) -> None:
        pass

    def instantiate_classes(self) -> None:
        pass

    def after_instantiate_classes(self) -> None:
        pass


def build_cli(argv: list[str], prog: str = "deepconv train", fine_tune: bool = False, parse_only: bool = False,
              cli_class: type[DeepconvCLI] = DeepconvCLI, module_class: type = ClassifierModule,
              data_class: type = ImageFolderData, description: str | None = None) -> DeepconvCLI:
    """The training CLI for `argv`, its classes built (`parse_only`: its `config` parsed and checked only).

    `cli_class`, `module_class` and `data_class` make another training of the same lifecycle (the localiser's).
    """
    # noise for deepconv users: argv is ours on purpose, run dirs are reused on resume (the history is kept by
    # run_dir.keep_history), the batch hook is the module's
    for message in ("LightningCLI's args parameter is intended", "Checkpoint directory .* exists and is not empty",
                    "You have overridden `on_after_batch_transfer`", ".*isinstance\\(treespec, LeafSpec\\)",
                    "Experiment logs directory .* exists and is not empty"):
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)  # the seed is in config.yaml
    quiet_lightning_tips()
    if parse_only:
        cli_class = type(f"Checked{cli_class.__name__}", (ParseOnly, cli_class), {})
    return cli_class(
        module_class,
        data_class,
        trainer_class=DeepconvTrainer,  # precision: auto (training/speed.py), resolved before Lightning's Trainer
        run=False,
        args=argv,
        trainer_defaults=TRAINER_DEFAULTS,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False, "prog": prog, "allow_abbrev": False,
                       "description": description or TITLE.format(command=prog.split()[-1])},
        fine_tune=fine_tune,
    )


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


def launcher_rank_zero() -> bool:
    """The one process of a (multi-node, multi-device) training that owns the run directory's lock and files."""
    return all(os.environ.get(name, "0") == "0" for name in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"))


def _interrupted_before_training(signum, frame) -> None:
    raise DeepconvError("interrupted (Ctrl-C) before training started: nothing to save", EXIT_INTERRUPTED)


def fit(cli: DeepconvCLI) -> None:
    try:
        _fit(cli, cli.trainer.is_global_zero and launcher_rank_zero())
    finally:
        cli.lock.release()


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
