"""A training run's lifecycle, the same for `train`, `fine-tune` and `localise fit` (and their recipe stages).

`build_cli` makes the LightningCLI (`DeepconvCLI`, or a subclass such as the localiser's) with the paper's
defaults; instantiating its Trainer takes the run directory's lock (training/run_dir.py), adds the callbacks and
atomic checkpoints; `after_instantiate_classes` plans the batch across devices and sets the CPU thread budget
(training/resources.py). training/fit.py's `fit` then runs the one fit sequence.

`--trainer.strategy ddp --trainer.devices N [--trainer.num_nodes M]` trains data parallel with the same
optimisation batch (`data.batch_size`) as one device. Re-running the same command after a crash, kill -9,
SIGTERM or SLURM pre-emption continues from RUN_DIR/last.ckpt (see training/faults.py and training/stops.py).
"""

import argparse
import atexit
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Literal

from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.errors import one_line_usage, usage
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
from deepconv_cli.training.faults import AtomicCheckpointIO, RngState
from deepconv_cli.training.module import ClassifierModule
from deepconv_cli.training.resources import set_threads, workers_warning
from deepconv_cli.training.run_dir import (
    RunLock,
)
from deepconv_cli.training.speed import DeepconvTrainer
from deepconv_cli.training.stops import (
    NonFiniteGuard,
    StopOnSignal,
    resume_command,
)
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


def launcher_rank_zero() -> bool:
    """The one process of a (multi-node, multi-device) training that owns the run directory's lock and files."""
    return all(os.environ.get(name, "0") == "0" for name in ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"))
