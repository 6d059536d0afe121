"""Training-step benchmark: Lightning step vs a raw PyTorch loop; GPU speed options (NHWC, bf16, torch.compile).

Batches are synthetic uint8 crops, or with `data` the real `ImageFolderData` training loader (decode, scale
jitter, crop, flip, workers; the module adds the PCA colour shift on the device), i.e. what `deepconv train`
runs. Model FLOP utilisation (`mfu`) counts 3 forward passes per image (forward + backward) against the GPU's
dense bf16 peak; None on CPU and on GPUs whose peak is not in the table.
"""

import itertools
import logging
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from deepconv_cli.benchmarks.report import Comparison, median
from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.registry import build, flop_count
from deepconv_cli.training import speed
from deepconv_cli.training.faults import NonFiniteGuard, RngState, StopOnSignal
from deepconv_cli.training.module import ClassifierModule
from deepconv_cli.training.throughput import EpochThroughput


def forward_flops(arch: str, crop: int = 224, width: float = 1.0, num_classes: int = 1000) -> int:
    """FLOPs (2 x multiply-adds) of one forward pass on a crop x crop image, counted on the registry's network."""
    return flop_count(arch, crop_size=crop, width=width, num_classes=num_classes)


def peak_tflops() -> float | None:
    """This machine's first GPU's dense bf16 peak from deepconv's table (training/speed.py); None on CPU."""
    return speed.peak_tflops(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else None


def _data(steps: int, batch: int, crop: int, classes: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (steps * batch, 3, crop, crop), dtype=torch.uint8, generator=g)
    y = torch.randint(0, classes, (steps * batch,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)


def mfu(images_per_second: float, arch: str, crop: int, width: float, classes: int) -> float | None:
    """Model FLOP utilisation (0..1) of a training rate on this machine's GPU; None without a known peak."""
    return speed.mfu(images_per_second, forward_flops(arch, crop, width, classes), peak_tflops())


def real_data(data: str, crop: int, batch_size: int, num_workers: int, s_min: int, s_max: int) -> ImageFolderData:
    """The training data module `deepconv train` would use on DATA (train/ and val/ inside), set up."""
    dm = ImageFolderData(data, s_min=s_min, s_max=s_max, crop_size=crop, batch_size=batch_size,
                         num_workers=num_workers)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _repeat(loader: DataLoader):
    """The loader's batches epoch after epoch (a fresh pass each time, nothing kept)."""
    while True:
        yield from loader


def _seconds_per_step(stamps: list[float], warmup: int) -> float:
    return (stamps[-1] - stamps[warmup - 1]) / (len(stamps) - warmup)


def raw_loop(model: Classifier, loader: DataLoader, device: torch.device, warmup: int, steps: int) -> float:
    """Seconds per step of the plain loop: to device, float, forward, cross-entropy, backward, SGD step (CUDA is
    synchronised only at the two timed stamps, as in the Lightning loop)."""
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    stamps = []
    for x, y in itertools.islice(_repeat(loader), steps):
        x, y = x.to(device).float(), y.to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda" and len(stamps) + 1 in (warmup, steps):  # only the timed stamps wait for the GPU
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    return _seconds_per_step(stamps, warmup)


class _StepClock(L.Callback):
    """Step end times; CUDA is synchronised only at the two stamps that are timed (after the warm-up and after
    the last step), so the steps in between run without host syncs, as in `deepconv train`."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.stamps: list[float] = []
        self.synced = {warmup, steps}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda" and len(self.stamps) + 1 in self.synced:
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if pl_module.device.type == "cuda" and -1 in self.synced:  # one epoch, length unknown: its end is timed
            torch.cuda.synchronize()
            self.stamps[-1] = time.perf_counter()


class _NoScheduler(ClassifierModule):
    """The module without its plateau scheduler, which steps once per epoch on a validation metric we skip."""

    def configure_optimizers(self):
        return super().configure_optimizers()["optimizer"]


def lightning_loop(
    module: ClassifierModule, loader: DataLoader | ImageFolderData, device: torch.device, warmup: int,
    precision: str = "32-true", steps: int = -1, metrics: dict | None = None,
) -> float:
    """Seconds per step of `Trainer.fit` with deepconv's module (CSV logging on, as `deepconv train` does);
    `loader` is a DataLoader or the real data module (whose statistics the module then adopts). `metrics`, when
    given, receives the run's `train/...` figures of `deepconv train`'s EpochThroughput (e.g. the data wait)."""
    clock = _StepClock(warmup, steps)
    log = logging.getLogger("lightning.pytorch")
    level = log.level
    log.setLevel(logging.ERROR)  # no per-run banners and tips between the tables
    try:
        with tempfile.TemporaryDirectory() as logs, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = L.Trainer(
                accelerator=device.type, devices=1, max_epochs=-1 if steps > 0 else 1, max_steps=steps,
                precision=precision, logger=CSVLogger(logs), num_sanity_val_steps=0,
                log_every_n_steps=10, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, limit_val_batches=0,
                # the per-step callbacks of `deepconv train` (guards, signal, random state), so their cost is timed
                callbacks=[clock, EpochThroughput(), NonFiniteGuard(Path(logs) / "last.ckpt"),
                           StopOnSignal(Path(logs) / "last.ckpt"), RngState()],
            )
            if isinstance(loader, ImageFolderData):
                trainer.fit(module, datamodule=loader)
            else:
                trainer.fit(module, train_dataloaders=loader)
            if metrics is not None:
                metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")})
    finally:
        log.setLevel(level)
    return _seconds_per_step(clock.stamps, warmup)


def _module(arch: str, width: float, crop: int, classes: int, **options) -> _NoScheduler:
    torch.manual_seed(0)
    return _NoScheduler(arch, classes, width=width, crop_size=crop, **options)


def benchmark_train(
    arch: str, width: float, crop: int, classes: int, batch_size: int, steps: int, runs: int, device: torch.device,
    options: bool, compile: bool, data: ImageFolderData | None = None,
) -> list[Comparison]:
    """Lightning vs raw loop (time per step), and optionally NHWC + bf16 (+ compile) vs fp32 NCHW (images/s).

    With `data` both sides read the real training loader (its class count replaces `classes`).
    """
    warmup = max(1, steps // 5)
    classes = data.num_classes if data is not None else classes
    source = data if data is not None else _data(steps, batch_size, crop, classes)
    raw, light, waits = [], [], []
    for _ in range(runs):
        torch.manual_seed(0)
        loader = data.train_dataloader() if data is not None else source
        raw.append(raw_loop(build(arch, num_classes=classes, width=width, crop_size=crop), loader, device, warmup,
                            steps))
        plain = _module(arch, width, crop, classes, channels_last=False, compile=False)
        seen: dict = {}
        light.append(lightning_loop(plain, source, device, warmup, steps=steps, metrics=seen))
        waits += [seen["train/data_wait_fraction"]] if "train/data_wait_fraction" in seen else []
    results = [
        Comparison(
            name="train step", unit="ms per step", ours=1000 * median(light), baseline=1000 * median(raw),
            ours_label="Lightning", baseline_label="raw PyTorch loop", higher_is_better=False, runs=runs,
            target="Lightning <= 1.05x raw (speedup >= 0.95)",
            extra={"model": f"{arch} width {width:g}, {crop}px, batch {batch_size}, {device.type}",
                   "data": f"real loader on {data.root}" if data is not None else "synthetic uint8 batches",
                   "images/s (Lightning)": round(batch_size / median(light), 1),
                   # deepconv train's per-epoch figure over the whole run, warm-up and loader start included
                   "data wait fraction (Lightning, whole run)": round(median(waits), 3) if waits else None},
            mfu=mfu(batch_size / median(light), arch, crop, width, classes) if device.type == "cuda" else None,
        )
    ]
    if options:
        results.append(_options(arch, width, crop, classes, batch_size, steps, runs, device, compile, warmup, source))
    return results


def _options(arch, width, crop, classes, batch_size, steps, runs, device, compile, warmup, loader) -> Comparison:
    fast_precision = "bf16-mixed"
    fast, plain = [], []
    for _ in range(runs):
        module = _module(arch, width, crop, classes, channels_last=True, compile=compile)
        fast.append(lightning_loop(module, loader, device, warmup, fast_precision, steps))
        baseline = _module(arch, width, crop, classes, channels_last=False, compile=False)
        plain.append(lightning_loop(baseline, loader, device, warmup, steps=steps))
    flops = 3 * forward_flops(arch, crop, width, classes)  # forward + backward ~ 3 forward passes
    rate = batch_size / median(fast)
    extra = {"precision": fast_precision, "batch size": batch_size, "device": str(device),
             "model TFLOP/s": round(rate * flops / 1e12, 3)}
    utilisation = mfu(rate, arch, crop, width, classes) if device.type == "cuda" else None
    if utilisation is not None:
        extra["model FLOP utilisation"] = f"{100 * utilisation:.1f}% of {peak_tflops()} TFLOP/s bf16"
    return Comparison(
        name="speed options", unit="images/s", ours=rate, baseline=batch_size / median(plain),
        ours_label="NHWC + bf16" + (" + compile" if compile else ""), baseline_label="NCHW fp32",
        higher_is_better=True, runs=runs, target="VGG-16 on one H100 >= 5,000 img/s", extra=extra,
        mfu=utilisation,
    )
