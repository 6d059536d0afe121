"""`deepconv train`: LightningCLI's fit with the paper's defaults, a run directory, and auto-resume."""

from pathlib import Path

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.errors import usage
from deepconv_cli.training.batching import plan_batches
from deepconv_cli.training.callbacks import CurvesPNG, StopAfterLrDrops
from deepconv_cli.training.module import ClassifierModule

TRAINER_DEFAULTS = {"max_epochs": 74, "default_root_dir": "runs/default", "log_every_n_steps": 10}


class DeepconvCLI(LightningCLI):
    """LightningCLI wired for deepconv: data -> model links, the run directory, callbacks, batch planning."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.crop_size", "model.crop_size")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.classes", "model.classes", apply_on="instantiate")
        parser.add_argument(
            "--resume", type=bool, default=True, help="continue from RUN_DIR/last.ckpt when it exists"
        )

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
        extra = [LearningRateMonitor("epoch"), CurvesPNG()]
        extra.append(StopAfterLrDrops(self.model.hparams.max_lr_drops, self.model.hparams.lr_drop_factor))
        if config.get("enable_checkpointing", True) is not False:
            extra.append(
                ModelCheckpoint(
                    dirpath=self.run_dir, filename="best", monitor="val/top1_error", mode="min", save_last=True
                )
            )
        if config.get("enable_progress_bar", True) is not False:
            extra.append(RichProgressBar())
        config["callbacks"] = list(config.get("callbacks") or []) + extra
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


def build_cli(argv: list[str], prog: str = "deepconv train") -> DeepconvCLI:
    return DeepconvCLI(
        ClassifierModule,
        ImageFolderData,
        run=False,
        args=argv,
        trainer_defaults=TRAINER_DEFAULTS,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False, "prog": prog},
    )


def fit(cli: DeepconvCLI) -> None:
    last = cli.run_dir / "last.ckpt"
    ckpt_path = str(last) if cli.config.get("resume") and last.is_file() else None
    if ckpt_path and cli.trainer.is_global_zero:
        print(f"resuming from {ckpt_path}")
    cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=ckpt_path)
    if cli.trainer.is_global_zero:
        best = cli.trainer.checkpoint_callback
        score = getattr(best, "best_model_score", None)
        if score is not None:
            print(f"best val top-1 error {float(score):.2f}% -> {best.best_model_path}")


def main(argv: list[str]) -> int:
    fit(build_cli(argv))
    return 0
