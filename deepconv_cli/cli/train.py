"""`deepconv train`: LightningCLI's fit with the paper's defaults, a run directory, auto-resume, any number of GPUs.

`--trainer.strategy ddp --trainer.devices N [--trainer.num_nodes M]` trains data parallel with the same
optimisation batch (`data.batch_size`) as one device. Re-running the same command after a crash, kill -9,
SIGTERM or SLURM pre-emption continues from RUN_DIR/last.ckpt (see training/faults.py).
"""

import logging
import warnings
from pathlib import Path

from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.errors import DeepconvError, usage
from deepconv_cli.models.checkpoint import ModelMeta, read_checkpoint
from deepconv_cli.training.batching import plan_batches
from deepconv_cli.training.callbacks import CurvesPNG, StopAfterLrDrops, ValidationCount
from deepconv_cli.training.faults import (
    EXIT_SIGNALLED,
    AtomicCheckpointIO,
    NonFiniteGuard,
    RngState,
    StopOnSignal,
    resume_checkpoint,
)
from deepconv_cli.training.module import ClassifierModule

TRAINER_DEFAULTS = {"max_epochs": 74, "default_root_dir": "runs/default", "log_every_n_steps": 10}


class DeepconvCLI(LightningCLI):
    """LightningCLI wired for deepconv: data -> model links, the run directory, callbacks, batch planning."""

    records_init = False  # fine-tune: --init_from / --init_layers are options too, so config.yaml records them

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.crop_size", "model.crop_size")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.classes", "model.classes", apply_on="instantiate")
        parser.add_argument(
            "--resume", type=bool, default=True, help="continue from RUN_DIR/last.ckpt when it exists"
        )
        if self.records_init:
            parser.add_argument("--init_from", type=str | None, default=None, help="the checkpoint initialised from")
            parser.add_argument("--init_layers", type=str | None, default=None, help="paper | all")

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, MisconfigurationException) as e:
            raise usage(str(e)) from None

    def instantiate_trainer(self, **kwargs):
        config = self._get(self.config_init, "trainer")
        self.run_dir = Path(config.get("default_root_dir") or ".")
        if config.get("logger") in (None, True):
            config["logger"] = CSVLogger(self.run_dir, name="", version="")
        last = self.run_dir / "last.ckpt"
        extra = [LearningRateMonitor("epoch"), CurvesPNG(), ValidationCount(), RngState()]
        extra.append(StopAfterLrDrops(self.model.hparams.max_lr_drops, self.model.hparams.lr_drop_factor))
        extra += [NonFiniteGuard(last), StopOnSignal(last)]
        if config.get("enable_checkpointing", True) is not False:
            # two callbacks: Lightning's save_last only writes last.ckpt in epochs that improve on best.ckpt
            best = {"filename": "best", "monitor": "val/top1_error", "mode": "min"}
            for which in (best, {"filename": "last"}):
                extra.append(ModelCheckpoint(dirpath=self.run_dir, enable_version_counter=False, **which))
        if config.get("enable_progress_bar", True) is not False:
            extra.append(RichProgressBar())
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
        if trainer.is_global_zero:
            print(
                f"batch {data.batch_size} = {trainer.world_size} device(s) x {per_device} images"
                f" x {accumulate} accumulation step(s); run directory {self.run_dir}"
            )


def build_cli(argv: list[str], prog: str = "deepconv train", cli_class: type = DeepconvCLI) -> DeepconvCLI:
    # noise for deepconv users: argv is ours on purpose, run dirs are reused on resume, the batch hook is the module's
    for message in ("LightningCLI's args parameter is intended", "Checkpoint directory .* exists and is not empty",
                    "You have overridden `on_after_batch_transfer`", ".*isinstance\\(treespec, LeafSpec\\)"):
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)  # the seed is in config.yaml
    return cli_class(
        ClassifierModule,
        ImageFolderData,
        run=False,
        args=argv,
        trainer_defaults=TRAINER_DEFAULTS,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False, "prog": prog},
    )


def check_same_run(ckpt: Path, meta: ModelMeta) -> None:
    """Resuming continues *this* run: a last.ckpt of another architecture, width, crop or class list is an error."""
    saved = ModelMeta.from_dict(read_checkpoint(ckpt)["deepconv"])
    for key in ("arch", "width", "crop_size", "classes"):
        if getattr(saved, key) != getattr(meta, key):
            raise usage(
                f"{ckpt} belongs to another run ({key} differs: {str(getattr(saved, key))[:60]} there, "
                f"{str(getattr(meta, key))[:60]} here); choose another --trainer.default_root_dir or pass --resume false"
            )


def fit(cli: DeepconvCLI) -> None:
    trainer = cli.trainer
    ckpt = resume_checkpoint(cli.run_dir, report=trainer.is_global_zero) if cli.config.get("resume") else None
    if ckpt:
        check_same_run(ckpt, cli.model.meta)
    if ckpt and trainer.is_global_zero:
        print(f"resuming from {ckpt}")
    if trainer.strategy.launcher is not None and trainer.is_global_zero:
        cli.datamodule.prepare_data()  # scan images and compute statistics before starting the other processes
    try:
        trainer.fit(cli.model, cli.datamodule, ckpt_path=str(ckpt) if ckpt else None)
    except SIGTERMException:  # Lightning's handler caught the signal before training began: nothing to save
        raise DeepconvError("stopped by SIGTERM before training started", EXIT_SIGNALLED) from None
    if cli.trainer.is_global_zero:
        best = cli.trainer.checkpoint_callback
        score = getattr(best, "best_model_score", None)
        if score is not None:
            print(f"best val top-1 error {float(score):.2f}% -> {best.best_model_path}")


def main(argv: list[str]) -> int:
    fit(build_cli(argv))
    return 0
