"""The localiser's training (Appendix A): `deepconv train`'s run lifecycle with the localiser module and box data.

The lifecycle is training/run.py's (run directory and lock, auto-resume, finished state, atomic checkpoints,
signal handling, batch planning, thread budget); the best checkpoint is the one with the lowest validation
localisation error (centre crop, ground-truth class), `val/loc_error`. `deepconv localise fit` (cli/localise_fit.py)
parses the command line and calls `build_localise_cli` and `training.fit.fit`.
"""

from lightning.pytorch.callbacks import ModelCheckpoint

from deepconv_cli.localisation.data import LocaliseData
from deepconv_cli.localisation.module import LocaliserModule
from deepconv_cli.training.options import LOCALISE_FIT
from deepconv_cli.training.run import DeepconvCLI, build_cli

MONITOR = "val/loc_error"
DESCRIPTION = "deepconv localise fit: train a bounding-box localiser (Appendix A) with Lightning's Trainer"


class LocaliseCLI(DeepconvCLI):
    """DeepconvCLI whose data gives the classes to check and whose checkpoints keep the lowest localisation error
    (its options and links: training/options.py's LOCALISE_FIT)."""

    BEST = "best val localisation error (centre crop, true class)"

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.monitor:
                callback.monitor = MONITOR
        return trainer


def build_localise_cli(argv: list[str], parse_only: bool = False) -> LocaliseCLI:
    """The localiser's training CLI for `argv` (`--model.init_from` the classification checkpoint)."""
    return build_cli(argv, LOCALISE_FIT, parse_only=parse_only, cli_class=LocaliseCLI,
                     module_class=LocaliserModule, data_class=LocaliseData, description=DESCRIPTION)
