"""A training run's lifecycle, the same for `train`, `fine-tune` and `localise fit` (and their recipe stages).

`build_cli` makes the LightningCLI (`DeepconvCLI`, or a subclass such as the localiser's) with the paper's
defaults and the command's options (training/options.py); instantiating its Trainer adds the callbacks and atomic
checkpoints; `after_instantiate_classes` plans the batch across devices, sets the CPU thread budget
(training/resources.py) and says what a config-less CPU run is about to train. Building writes nothing into the run
directory: training/fit.py's `fit` then runs the one fit sequence inside the run's lifecycle (training/lifecycle.py:
the lock, resume, the finished state).

`--trainer.strategy ddp --trainer.devices N [--trainer.num_nodes M]` trains data parallel with the same
optimisation batch (`data.batch_size`) as one device. Re-running the same command after a crash, kill -9,
SIGTERM or SLURM pre-emption continues from RUN_DIR/last.ckpt (see training/faults.py and training/stops.py).
"""

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

import jsonargparse.typing
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.errors import one_line_usage, usage
from deepconv_cli.models.registry import get_spec
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
from deepconv_cli.training.faults import AtomicCheckpointIO, EpochSoFar, RngState
from deepconv_cli.training.module import ClassifierModule
from deepconv_cli.training.options import TRAIN, TrainingCommand
from deepconv_cli.training.resources import set_threads, workers_warning
from deepconv_cli.training.speed import DeepconvTrainer
from deepconv_cli.training.stops import (
    NonFiniteGuard,
    StopOnSignal,
    resume_command,
)
from deepconv_cli.training.throughput import EpochThroughput

QUICKSTART = "recipes/quickstart/vgg_a.yaml"
TRAINER_DEFAULTS = {"max_epochs": 74, "default_root_dir": "runs/default", "log_every_n_steps": 10}
TITLE = "deepconv {command}: train a network (VGG A-E, AlexNet, ZFNet, LeNet-5, NiN, GoogLeNet) with Lightning's " \
    "Trainer"


class Parsed(Exception):  # noqa: N818 - not an error: how a parse-only CLI stops once its config is checked
    """Raised by a parse-only DeepconvCLI right after parsing, so that nothing is seeded, built or read."""

    def __init__(self, cli: "DeepconvCLI") -> None:
        super().__init__("parsed")
        self.cli = cli


class DeepconvCLI(LightningCLI):
    """LightningCLI wired for deepconv: data -> model links, the run directory, callbacks, batch planning."""

    BEST = "best val top-1 error"  # what `fit` reports of the best checkpoint's monitored score

    def __init__(self, *args, command: TrainingCommand = TRAIN, parse_only: bool = False, **kwargs) -> None:
        self.command, self.parse_only = command, parse_only
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for source, target, apply_on in self.command.links:
            parser.link_arguments(source, target, apply_on=apply_on)
        for option in self.command.options:
            kind = getattr(jsonargparse.typing, option.type) if isinstance(option.type, str) else option.type
            parser.add_argument(f"--{option.name}", type=kind, default=option.default, help=option.help)

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        self.command_line = resume_command(parser.prog, args)  # gpusync: what StopOnSignal prints to resume
        try:
            super().parse_arguments(parser, args)
        except argparse.ArgumentError as e:
            known = ["--" + key for key in parser.get_defaults().keys()]  # noqa: SIM118 - a Namespace
            raise one_line_usage(e, known, parser.prog) from None
        if self.parse_only:
            raise Parsed(self)

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, MisconfigurationException) as e:
            raise usage(str(e)) from None

    def instantiate_trainer(self, **kwargs):
        config = (self.config_init[self.subcommand] if self.subcommand else self.config_init)["trainer"]
        self.run_dir = Path(config.get("default_root_dir") or ".")
        if config.get("logger") in (None, True):
            config["logger"] = CSVLogger(self.run_dir, name="", version="")
        last = self.run_dir / "last.ckpt"
        curves = CurvesPNG(log_error=bool(self.config.get("curves_log_error")))
        extra = [LearningRateMonitor("epoch"), curves, ValidationCount(), RngState(), EpochSoFar(), EpochThroughput()]
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
            if not self.config.get("config") and self.on_cpu():
                print(self.cpu_note())
            warning = workers_warning(data.num_workers, trainer.num_devices)
            if warning:
                print(warning, file=sys.stderr)

    def on_cpu(self) -> bool:
        return isinstance(self.trainer.accelerator, CPUAccelerator)

    def cpu_note(self) -> str:
        """What a run without a -c config is about to train on the CPU, and the recipe that suits a CPU."""
        meta, data = self.model.meta, self.datamodule
        params = sum(p.numel() for p in self.model.parameters())
        return (f"note: no -c config: training {get_spec(meta.arch).display_name} at width {meta.width:g} "
                f"({params / 1e6:.1f} M parameters) on {data.crop_size}px crops, batch {data.batch_size}, on the CPU; "
                f"full-width nets take minutes per step here. For a CPU-sized run: deepconv train -c {QUICKSTART} (or "
                "the whole chain: deepconv recipe run recipes/quickstart.yaml)")


def build_cli(argv: list[str], command: TrainingCommand = TRAIN, prog: str | None = None, parse_only: bool = False,
              cli_class: type[DeepconvCLI] = DeepconvCLI, module_class: type = ClassifierModule,
              data_class: type = ImageFolderData, description: str | None = None) -> DeepconvCLI:
    """The training CLI of `command` for `argv`, its classes built (`parse_only`: its `config` parsed and checked,
    nothing seeded, built or read). `argv` is spelled as LightningCLI parses it (cli/train.py's `precheck`).

    `cli_class`, `module_class` and `data_class` make another training of the same lifecycle (the localiser's).
    """
    prog = prog or command.prog
    # noise for deepconv users: argv is ours on purpose, run dirs are reused on resume (the history is kept by
    # run_dir.keep_history), the batch hook is the module's
    for message in ("LightningCLI's args parameter is intended", "Checkpoint directory .* exists and is not empty",
                    "You have overridden `on_after_batch_transfer`", ".*isinstance\\(treespec, LeafSpec\\)",
                    "Experiment logs directory .* exists and is not empty"):
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)  # the seed is in config.yaml
    quiet_lightning_tips()
    try:
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
            command=command,
            parse_only=parse_only,
        )
    except Parsed as parsed:
        return parsed.cli

