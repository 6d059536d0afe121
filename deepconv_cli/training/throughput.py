"""Per-epoch training throughput in metrics.csv and the progress bar: images/s, data-wait fraction, MFU.

Logged at the end of every training epoch (validation time excluded):

- `train/images_per_second`: training images of the epoch (all devices) / the epoch's training wall time.
- `train/data_wait_fraction`: the share of that time the training loop spent between steps: waiting for the
  loader's next batch, copying it to the device and the module's batch hook (uint8 -> float, colour shift; the
  JPEG decoding with `data.decode_on: cuda`) (0: the data never held the step up; 1: all waiting).
- `train/mfu`: model FLOP utilisation, images/s x 3 forward passes' FLOPs (forward + backward, counted by
  `registry.flop_count` on the trained network) over the GPUs' dense bf16 peak (`speed.PEAK_BF16_TFLOPS`),
  whatever the precision. Not logged on the CPU or on GPUs missing from the table.

Lightning's ThroughputMonitor is not used: it reports a sliding window per logged step, synchronises CUDA after
every step (a stall deepconv avoids), writes past the progress bar and has no data-wait figure. Here CUDA is
synchronised once per epoch, and the host-side gap between steps is the data wait: with a fast loader the next
batch is already queued and the gap is ~0 while the GPU is busy; a slow loader shows up as gap time.
"""

import time

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from deepconv_cli.training.speed import mfu, peak_tflops

SHORT = {"images_per_second": "img/s", "data_wait_fraction": "data_wait", "mfu": "mfu"}  # progress-bar names


def forward_flops(module: L.LightningModule) -> int | None:
    """FLOPs of one forward pass of the module's network on one training crop (None when not countable)."""
    from deepconv_cli.models.registry import flop_count

    meta = getattr(module, "meta", None)
    if meta is None:
        return None
    try:
        return flop_count(meta.arch, crop_size=meta.crop_size, num_classes=meta.num_classes, width=meta.width,
                          dropout=meta.dropout, **dict(meta.options or {}))
    except Exception:  # noqa: BLE001 - a network the counter cannot trace has no MFU, training goes on
        return None


class EpochThroughput(Callback):
    """Log images/s, the data-wait fraction and (on known GPUs) MFU once per training epoch."""

    def __init__(self) -> None:
        self.peak: float | None = None  # TFLOP/s of all devices together
        self.flops: int | None = None
        self.started: float | None = None  # None: no epoch being measured (a resumed epoch starts at its first step)
        self.loaded: dict | None = None  # the interrupted epoch's counts, from the checkpoint

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        root = trainer.strategy.root_device
        if root.type == "cuda" and stage == "fit":
            one = peak_tflops(torch.cuda.get_device_name(root))
            self.peak = one * trainer.world_size if one else None
            self.flops = forward_flops(module) if self.peak else None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._reset()
        self.loaded = None  # a new epoch: counts saved in an earlier one are not this epoch's

    def state_dict(self) -> dict:
        """The epoch's counts so far (in every checkpoint): a mid-epoch resume continues them."""
        if self.started is None:
            return {}
        seconds = time.perf_counter() - self.started - self.validating
        return {"seconds": seconds, "wait": self.wait, "images": self.images}

    def load_state_dict(self, state_dict: dict) -> None:
        self.loaded = state_dict or None

    def _reset(self) -> None:
        self.started = self.last_end = time.perf_counter()
        self.wait = self.validating = 0.0
        self.images = 0

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        if self.started is None:  # resumed mid-epoch: Lightning does not call on_train_epoch_start again
            self._reset()
            if self.loaded:  # the counts of the epoch's steps before the interruption
                self.started -= self.loaded["seconds"]
                self.wait, self.images, self.loaded = self.loaded["wait"], self.loaded["images"], None
        self.wait += time.perf_counter() - self.last_end

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        self.images += len(batch[0])
        self.last_end = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.validation_started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.started is None:
            return
        now = time.perf_counter()
        self.validating += now - self.validation_started
        self.last_end = now  # validation between two steps (val_check_interval < 1) is not data wait

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.started is None or not self.images:
            return
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()  # the epoch's queued GPU work belongs to its time
        seconds = time.perf_counter() - self.started - self.validating
        self.started = None
        if seconds <= 0:
            return
        rate = self.images * trainer.world_size / seconds
        values = {"images_per_second": rate, "data_wait_fraction": min(1.0, self.wait / seconds)}
        utilisation = mfu(rate, self.flops, self.peak) if self.flops else None
        if utilisation is not None:
            values["mfu"] = utilisation
        for name, value in values.items():  # full names in metrics.csv, short ones in the progress bar
            module.log(f"train/{name}", value, prog_bar=False, rank_zero_only=True)
            module.log(SHORT[name], value, prog_bar=True, logger=False, rank_zero_only=True)
