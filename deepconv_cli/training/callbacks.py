"""Callbacks Lightning lacks: stop after the paper's three learning-rate drops, count validation images, plot curves."""

import csv
import math
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from deepconv_cli.files import staged_file


class StopAfterLrDrops(Callback):
    """Stop at the plateau that would take the learning rate below `max_drops` drops (VGG paper section 3.1).

    The drops are counted from the optimizer's current learning rate against the module's initial `lr`, so the
    count survives a resume without state of its own.
    """

    def __init__(self, max_drops: int = 3, factor: float = 0.1) -> None:
        self.max_drops, self.factor = max_drops, factor

    def drops(self, trainer: L.Trainer, module: L.LightningModule) -> int:
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        return round(math.log(lr / module.hparams.lr) / math.log(self.factor))

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.drops(trainer, module) > self.max_drops:
            trainer.should_stop = True
            if trainer.is_global_zero:
                print(f"validation error stopped improving after {self.max_drops} learning-rate drops: stopping")


class ValidationCount(Callback):
    """Log `val/images`: how many images the validation pass saw, summed over all processes.

    It equals the size of val/ when every image counts exactly once (what the unpadded distributed sampler
    guarantees); torchvision's reference scripts make the same check.
    """

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seen = 0

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.seen += len(batch[1])

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        total = trainer.strategy.reduce(torch.tensor(float(self.seen), device=module.device), reduce_op="sum")
        module.log("val/images", total, sync_dist=False)


class CurvesPNG(Callback):
    """At the end of fit, plot training loss and validation top-1/top-5 error per epoch to run_dir/curves.png."""

    def __init__(self, filename: str = "curves.png") -> None:
        self.filename = filename

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        log_dir = trainer.log_dir if trainer.logger is not None else None  # a collective: every process asks
        if not trainer.is_global_zero or log_dir is None:
            return
        metrics = Path(log_dir) / "metrics.csv"
        if metrics.is_file():
            plot_curves(metrics, Path(log_dir) / self.filename)


def _epoch_series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(int(r["epoch"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
    return [p[0] + 1 for p in pairs], [p[1] for p in pairs]


def plot_curves(metrics_csv: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(*_epoch_series(rows, "train/loss_epoch"), marker="o", label="train")
    ax_loss.plot(*_epoch_series(rows, "val/loss"), marker="o", label="val")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_err.plot(*_epoch_series(rows, "val/top1_error"), marker="o", label="top-1")
    ax_err.plot(*_epoch_series(rows, "val/top5_error"), marker="o", label="top-5")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="validation error")
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with staged_file(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
