"""A Lightning callback for `deepconv benchmark gpu`: times a real `deepconv train` run from the outside.

Given to the run as `--trainer.callbacks+=deepconv_cli.benchmarks.train_clock.TrainClock` (with `out`, `warmup`
and `window`), it writes one JSON file: when the first training step ended (Unix time, for the time to first
step), images/s over `window` steps after `warmup` (CUDA synchronised at the two stamps only), and the peak
memory; then it stops the run."""

import json
import resource
import time

import lightning as L
import torch

from deepconv_cli.files import write_text_atomically


class TrainClock(L.Callback):
    """Images/s of a training run over a window of steps after warm-up, its first step's end and peak memory."""

    def __init__(self, out: str, warmup: int = 15, window: int = 40) -> None:
        self.out, self.warmup, self.window = out, warmup, window
        self.steps = self.images = 0
        self.first_step_end = self.started = 0.0

    def _sync(self, module: L.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps += 1
        if self.steps == 1:
            self._sync(pl_module)
            self.first_step_end = time.time()
        if self.steps == self.warmup:
            self._sync(pl_module)
            self.started = time.perf_counter()
        elif self.steps > self.warmup:
            self.images += len(batch[0])
            if self.steps == self.warmup + self.window:
                self._sync(pl_module)
                self._write(trainer, pl_module, time.perf_counter() - self.started)
                trainer.should_stop = True

    def _write(self, trainer: L.Trainer, module: L.LightningModule, seconds: float) -> None:
        cuda = module.device.type == "cuda"
        peak = torch.cuda.max_memory_allocated(module.device) if cuda else \
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        result = {"first_step_end_unix": self.first_step_end, "images_per_second": self.images / seconds,
                  "images": self.images, "seconds": seconds, "warmup_steps": self.warmup, "steps": self.window,
                  "peak_memory_bytes": peak, "peak_memory_of": "CUDA allocated" if cuda else "process RSS",
                  "device": torch.cuda.get_device_name(module.device) if cuda else "cpu",
                  "precision": str(trainer.precision), "compiled": bool(getattr(module, "compiled", False)),
                  "channels_last": bool(getattr(module, "channels_last", False))}
        write_text_atomically(self.out, json.dumps(result, indent=1))
