"""No host synchronisation per training step: the non-finite guard, the progress-bar metrics and the signal flag
stay on the device and are read only on logging steps (every `log_every_n_steps`), so a GPU's queue never drains
between them."""

from collections import Counter

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from torch.utils.data import DataLoader, TensorDataset

from deepconv_cli.training.callbacks import EpochProgressBar, ValidationCount
from deepconv_cli.training.faults import RngState
from deepconv_cli.training.module import ClassifierModule
from deepconv_cli.training.stops import NonFiniteGuard, StopOnSignal
from deepconv_cli.training.throughput import EpochThroughput

WATCHED = ("item", "__bool__", "__float__", "__int__", "tolist", "cpu")
WARM_UP, WATCH, EVERY = 3, 20, 5


class CountHostReads(Callback):
    """Wrap the Tensor methods that make the host wait for the device during WATCH steps after WARM_UP; record on
    which batch each call happens."""

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self.saved: dict = {}
        self.batch = -1

    def _wrap(self, name: str):
        original = getattr(torch.Tensor, name)

        def wrapper(tensor, *args, **kwargs):
            self.calls[(self.batch, name)] += 1
            return original(tensor, *args, **kwargs)

        return original, wrapper

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        self.batch = batch_idx
        if batch_idx == WARM_UP:
            for name in WATCHED:
                self.saved[name], wrapper = self._wrap(name)
                setattr(torch.Tensor, name, wrapper)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        if batch_idx == WARM_UP + WATCH - 1:
            self.batch = -1
            for name, original in self.saved.items():
                setattr(torch.Tensor, name, original)
            self.saved = {}


def test_training_steps_read_the_device_only_on_logging_steps(tmp_path):
    steps = WARM_UP + WATCH + 2
    x = torch.randint(0, 256, (steps * 4, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (steps * 4,))
    loader = DataLoader(TensorDataset(x, y), batch_size=4)  # tensors already made: no data work in the window
    counter = CountHostReads()
    callbacks = [counter, NonFiniteGuard(tmp_path / "last.ckpt"), StopOnSignal(tmp_path / "last.ckpt"),
                 ValidationCount(), RngState(), EpochThroughput(), LearningRateMonitor("epoch"), EpochProgressBar()]
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, log_every_n_steps=EVERY, callbacks=callbacks,
                        default_root_dir=tmp_path, enable_checkpointing=False, num_sanity_val_steps=0,
                        limit_val_batches=1, logger=L.pytorch.loggers.CSVLogger(tmp_path))
    module = ClassifierModule("A", num_classes=10, width=0.0625, crop_size=32)
    try:
        trainer.fit(module, loader, DataLoader(TensorDataset(x[:4], y[:4]), batch_size=4))
    finally:
        for name, original in counter.saved.items():
            setattr(torch.Tensor, name, original)
    assert trainer.global_step == steps
    batches = sorted({batch for batch, _ in counter.calls})
    logging = [b for b in range(WARM_UP, WARM_UP + WATCH) if (b + 1) % EVERY == 0]  # Lightning's logging steps
    assert set(batches) <= set(logging), f"host reads on non-logging batches: {counter.calls}"
    assert batches, "the guard never read its verdict"  # it does read on logging steps
