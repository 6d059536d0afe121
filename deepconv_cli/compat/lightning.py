"""Lightning behaviour without a public API: whether a module is attached to a Trainer, whether this training
step is one the logger writes, the training bar's description, and the names Lightning's precision accepts."""

import lightning as L
from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT
from lightning.pytorch.callbacks import RichProgressBar

# the precision names Lightning's Trainer accepts (32-true, bf16-mixed, 16-mixed, ...): typed options offer them
PRECISION_INPUT = _PRECISION_INPUT


def attached_trainer(module: L.LightningModule) -> L.Trainer | None:
    """The Trainer `module` runs under, or None when it runs alone (a test, export): Lightning's public `trainer`
    property raises RuntimeError then."""
    try:
        return module.trainer
    except RuntimeError:
        return None


def should_update_logs(trainer: L.Trainer) -> bool:
    """Lightning's rule for the training steps whose metrics the logger writes (every `log_every_n_steps`
    batches that stepped, and the last one); the one private read of Lightning's logger connector."""
    return bool(trainer._logger_connector.should_update_logs)  # noqa: SLF001 - no public equivalent


class DescribedRichProgressBar(RichProgressBar):
    """RichProgressBar whose training description is `train_description(epoch)`; Lightning reads it through a
    private method, overridden here only."""

    def train_description(self, current_epoch: int) -> str:
        return super()._get_train_description(current_epoch)  # noqa: SLF001

    def _get_train_description(self, current_epoch: int) -> str:
        return self.train_description(current_epoch)
