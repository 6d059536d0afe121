"""Callbacks Lightning lacks or says untrue things with: stop after the paper's learning-rate drops, count
validation images, plot curves, a best score that survives a moved run folder, 1-based epochs, no FLOPs column."""

import csv
import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichModelSummary

from deepconv_cli.compat.lightning import DescribedRichProgressBar
from deepconv_cli.files import staged_file
from deepconv_cli.training.stops import logging_step


class StopAfterLrDrops(Callback):
    """Stop at the plateau after `max_drops` learning-rate drops (VGG paper section 3.1: three drops, then stop).

    At the end of each epoch (after validation, before the plateau scheduler steps) the scheduler's own rule
    tells whether it is about to drop once more; when `max_drops` drops are already done, training stops there,
    with no further epoch started. The drops are counted from the optimizer's learning rate against the module's
    initial `lr`, so the count survives a resume without state of its own.
    """

    def __init__(self, max_drops: int = 3, factor: float = 0.1) -> None:
        self.max_drops, self.factor = max_drops, factor
        self.stopped = False

    def drops(self, trainer: L.Trainer, module: L.LightningModule) -> int:
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        return round(math.log(lr / module.hparams.lr) / math.log(self.factor))

    @staticmethod
    def would_drop(trainer: L.Trainer) -> bool:
        """True when the plateau scheduler's step at the end of this epoch lowers the learning rate."""
        config = next((c for c in trainer.lr_scheduler_configs if c.reduce_on_plateau), None)
        value = trainer.callback_metrics.get(config.monitor) if config is not None else None
        if value is None:
            return False
        plateau = config.scheduler
        if plateau.cooldown_counter > 0 or _improves(plateau, float(value)):
            return False
        return plateau.num_bad_epochs + 1 > plateau.patience

    def _stop(self, trainer: L.Trainer, drops: int, lr: float) -> None:
        trainer.should_stop, self.stopped = True, True
        if trainer.is_global_zero:
            print(f"validation error stopped improving at learning rate {lr:g}, after {drops} learning-rate"
                  f" drop{'s' if drops != 1 else ''} (model.max_lr_drops {self.max_drops}): training stops at epoch"
                  f" {trainer.current_epoch + 1}")

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        drops = self.drops(trainer, module)
        if drops >= self.max_drops and self.would_drop(trainer):
            self._stop(trainer, drops, trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        drops = self.drops(trainer, module)  # a checkpoint of 0.1.0, saved after one drop too many
        if drops > self.max_drops:
            self._stop(trainer, drops - 1, trainer.optimizers[0].param_groups[0]["lr"] / self.factor)


def _improves(plateau: torch.optim.lr_scheduler.ReduceLROnPlateau, value: float) -> bool:
    """ReduceLROnPlateau's own test of an improvement, from its public settings."""
    best, threshold = plateau.best, plateau.threshold
    sign = 1 if plateau.mode == "min" else -1
    if plateau.threshold_mode == "rel":
        return sign * value < sign * best * (1 - sign * threshold)
    return sign * value < sign * best - threshold


class RunCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose best score survives a moved or renamed run folder.

    Lightning restores `best_model_score` only when the saved `dirpath` equals the current one; after `mv run
    run2` a resumed run forgot its best and let a worse epoch replace best.ckpt. The saved paths are moved into
    the current folder (same file names) before Lightning restores them.
    """

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args, **kwargs) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # the epoch-end checkpoint follows validation; one saved before it would resume past validation
        super().on_train_batch_end(trainer, module, *args, **kwargs)

    @property
    def state_key(self) -> str:  # ModelCheckpoint's key, so checkpoints of either class restore each other's state
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and Path(old) != Path(self.dirpath):
            here = Path(self.dirpath)

            def moved(path: Any) -> Any:
                return str(here / Path(path).name) if path else path

            state_dict = dict(state_dict, dirpath=self.dirpath)
            for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
                if key in state_dict:
                    state_dict[key] = moved(state_dict[key])
            if isinstance(state_dict.get("best_k_models"), dict):
                state_dict["best_k_models"] = {moved(k): v for k, v in state_dict["best_k_models"].items()}
        super().load_state_dict(state_dict)


class EpochProgressBar(DescribedRichProgressBar):
    """Rich bars with epochs counted from 1 ("Epoch 30/30" for the last of 30), as the summary lines count them."""

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.should_stop:  # stopping: no empty bar for an epoch that will not run
            return
        super().on_train_epoch_start(trainer, module)

    def get_metrics(self, trainer: L.Trainer, module: L.LightningModule) -> dict:
        """Lightning's items and the training loss, read from the device only on logging steps (reading it every
        step would make the host wait for the device every step)."""
        items = super().get_metrics(trainer, module)
        if trainer.training and logging_step(trainer):
            value = trainer.callback_metrics.get("train/loss_step")
            self._loss = float(value) if value is not None else getattr(self, "_loss", None)
        if getattr(self, "_loss", None) is not None:
            items["loss"] = f"{self._loss:.3f}"
        return items

    def train_description(self, current_epoch: int) -> str:
        total = f"/{self.trainer.max_epochs}" if self.trainer.max_epochs not in (None, -1) else ""
        description = f"Epoch {current_epoch + 1}{total}"
        return f"{description:{len(self.validation_description)}}"


class SummaryWithoutFlops(RichModelSummary):
    """Lightning's model summary without the FLOPs column and "Total FLOPs: 0" (they need an example input)."""

    @staticmethod
    def summarize(summary_data, total_parameters, trainable_parameters, model_size, total_training_modes,
                  total_flops, **kwargs) -> None:
        from rich import get_console
        from rich.table import Table

        from deepconv_cli.tables import show

        table = Table(header_style="bold magenta")
        for name, values in summary_data:
            if name != "FLOPs":
                table.add_column(name, justify="right" if name == "Params" else "left")
        rows = zip(*(values for name, values in summary_data if name != "FLOPs"))
        for row in rows:
            table.add_row(*row)
        console = get_console()
        show(table, console)
        console.print(f"[bold]Total params[/]: {trainable_parameters:,} trainable, "
                      f"{total_parameters - trainable_parameters:,} frozen, {model_size:.1f} MB")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg) and "Skipping setting a default `ModelSummary`" not in str(record.msg)


def quiet_lightning_tips() -> None:
    """Drop Lightning's advertisements (litlogger, litmodels) from the output; its other lines stay."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())


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
    """Plot training loss and validation top-1/top-5 error per epoch to run_dir/curves.png, at the end of fit and
    when training stops early (a signal, Ctrl-C, a non-finite loss), from the whole of metrics.csv."""

    def __init__(self, filename: str = "curves.png", log_error: bool = False) -> None:
        self.filename, self.log_error = filename, log_error

    def _plot(self, trainer: L.Trainer) -> None:
        log_dir = trainer.log_dir if trainer.logger is not None else None  # a collective: every process asks
        if not trainer.is_global_zero or log_dir is None:
            return
        trainer.logger.save()  # rows still buffered (an interrupted epoch) go to metrics.csv first
        metrics = Path(log_dir) / "metrics.csv"
        if metrics.is_file():
            plot_curves(metrics, Path(log_dir) / self.filename, self.log_error)

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._plot(trainer)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        try:
            self._plot(trainer)
        except Exception:  # noqa: BLE001, S110 - never hide the exception that stopped training behind a plot error
            pass


def _epoch_series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(epochs counted from 1, values) of one column; a value logged twice for an epoch counts once (the last)."""
    values: dict[int, float] = {}
    for r in rows:
        if r.get(key) not in (None, "") and r.get("epoch") not in (None, ""):
            value = float(r[key])
            if math.isfinite(value):
                values[int(float(r["epoch"])) + 1] = value
    epochs = sorted(values)
    return epochs, [values[e] for e in epochs]


def lr_drops(rows: list[dict]) -> list[tuple[int, float]]:
    """(first epoch at the new rate, rate) for every learning-rate drop, from the `lr-*` columns."""
    lr_key = next((k for k in (rows[0] if rows else {}) if k.startswith("lr-")), None)
    if lr_key is None:
        return []
    rates: list[tuple[int, float]] = []
    last_epoch = -1
    for r in rows:  # LearningRateMonitor logs at epoch start, without an epoch: the next row's epoch is it
        if r.get("epoch") not in (None, ""):
            last_epoch = int(float(r["epoch"]))
        elif r.get(lr_key) not in (None, ""):
            rates.append((last_epoch + 2, float(r[lr_key])))  # 1-based epoch that starts at this rate
    return [(epoch, lr) for (epoch, lr), (_, before) in zip(rates[1:], rates) if lr < before]


def plot_curves(metrics_csv: Path, out: Path, log_error: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(*_epoch_series(rows, "train/loss_epoch"), marker="o", label="train")
    ax_loss.plot(*_epoch_series(rows, "val/loss"), marker="o", label="val")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    top1 = _epoch_series(rows, "val/top1_error")
    ax_err.plot(*top1, marker="o", label="top-1")
    ax_err.plot(*_epoch_series(rows, "val/top5_error"), marker="o", label="top-5")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="validation error")
    if log_error:
        ax_err.set_yscale("log")
    if top1[0]:
        best = min(range(len(top1[1])), key=top1[1].__getitem__)
        ax_err.scatter([top1[0][best]], [top1[1][best]], s=160, marker="*", color="gold", edgecolor="black",
                       zorder=5, label=f"best {top1[1][best]:.2f}% (epoch {top1[0][best]})")
    for i, (epoch, lr) in enumerate(lr_drops(rows)):
        for ax in (ax_loss, ax_err):
            ax.axvline(epoch - 0.5, color="grey", linestyle="--", linewidth=1,
                       label=f"lr drops (to {lr:g}, ...)" if i == 0 and ax is ax_err else None)
    for ax in (ax_loss, ax_err):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with staged_file(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
