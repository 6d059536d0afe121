"""`deepconv localise fit -c recipe.yaml --init_from CLS_CKPT`: train a localiser with LightningCLI.

The training CLI is `deepconv train`'s (`DeepconvCLI`: run directory, auto-resume, atomic checkpoints, signal
handling, batch planning) with the localiser module and box data; the best checkpoint is the one with the lowest
validation localisation error (centre crop, ground-truth class), `val/loc_error`.
"""

import logging
import warnings

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser

from deepconv_cli.cli.lightning_cli import TRAINER_DEFAULTS, DeepconvCLI, ParseOnly, check_same_run
from deepconv_cli.cli.options import OneLineParser
from deepconv_cli.errors import usage
from deepconv_cli.localisation.data import LocaliseData
from deepconv_cli.localisation.module import LocaliserModule
from deepconv_cli.models.checkpoint import read_checkpoint
from deepconv_cli.training.faults import resume_checkpoint
from deepconv_cli.training.speed import DeepconvTrainer

MONITOR = "val/loc_error"


class LocaliseCLI(DeepconvCLI):
    """DeepconvCLI whose data gives the classes to check and whose checkpoints keep the lowest localisation error."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.classes", "model.classes", apply_on="instantiate")
        parser.add_argument("--resume", type=bool, default=True, help="continue from RUN_DIR/last.ckpt when it exists")

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.monitor:
                callback.monitor = MONITOR
        return trainer


class CheckedLocaliseCLI(ParseOnly, LocaliseCLI):
    """LocaliseCLI that only parses (see ParseOnly)."""


def build_cli(argv: list[str], parse_only: bool = False) -> LocaliseCLI:
    for message in ("LightningCLI's args parameter is intended", "Checkpoint directory .* exists and is not empty",
                    "You have overridden `on_after_batch_transfer`", ".*isinstance\\(treespec, LeafSpec\\)"):
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)
    cli_class = CheckedLocaliseCLI if parse_only else LocaliseCLI
    return cli_class(LocaliserModule, LocaliseData, run=False, args=argv, trainer_defaults=TRAINER_DEFAULTS,
                     trainer_class=DeepconvTrainer,  # precision: auto, as `deepconv train`
                     seed_everything_default=0, save_config_kwargs={"overwrite": True},
                     parser_kwargs={"exit_on_error": False, "prog": "deepconv localise fit"})


def localiser_argv(argv: list[str]) -> list[str]:
    """`--init_from CKPT` (required unless help is asked) becomes the module's `--model.init_from`."""
    parser = OneLineParser(prog="deepconv localise fit", add_help=False)
    parser.add_argument("--init-from", "--init_from", dest="init_from")
    opts, rest = parser.parse_known_args(argv)
    asks_only = any(a in ("-h", "--help") or a.startswith("--print_config") for a in argv)
    if not opts.init_from and not asks_only:
        raise usage("localise fit needs --init_from CKPT (the classification checkpoint, trained at the same S)")
    return rest + ([f"--model.init_from={opts.init_from}"] if opts.init_from else [])


def parse(argv: list[str]):
    """The configuration `main` trains with, parsed and checked by its LightningCLI parser; nothing built."""
    return build_cli(localiser_argv(argv), parse_only=True).config


def main(argv: list[str]) -> int:
    cli = build_cli(localiser_argv(argv))
    trainer = cli.trainer
    ckpt = resume_checkpoint(cli.run_dir, report=trainer.is_global_zero) if cli.config.get("resume") else None
    if ckpt:
        check_same_run(ckpt, read_checkpoint(ckpt), cli.model.meta)
        print(f"resuming from {ckpt}")
    trainer.fit(cli.model, cli.datamodule, ckpt_path=str(ckpt) if ckpt else None)
    best = trainer.checkpoint_callback
    if trainer.is_global_zero and getattr(best, "best_model_score", None) is not None:
        print(f"best val localisation error (centre crop, true class) {float(best.best_model_score):.2f}% -> "
              f"{best.best_model_path}")
    return 0
