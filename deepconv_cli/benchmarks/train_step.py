"""Training-step benchmark: Lightning step vs a raw PyTorch loop; GPU speed options (NHWC, bf16, torch.compile)."""

import logging
import tempfile
import time
import warnings

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from deepconv_cli.benchmarks.report import Comparison, median
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.registry import build, flop_count
from deepconv_cli.training.module import ClassifierModule

# dense bf16 tensor-core peaks (TFLOP/s) of the GPUs we know, for model FLOP utilisation
PEAK_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L4": 121.0, "A10": 125.0}


def forward_flops(arch: str, crop: int = 224, width: float = 1.0, num_classes: int = 1000) -> int:
    """FLOPs (2 x multiply-adds) of one forward pass on a crop x crop image, counted on the registry's network."""
    return flop_count(arch, crop_size=crop, width=width, num_classes=num_classes)


def peak_tflops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def _data(steps: int, batch: int, crop: int, classes: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (steps * batch, 3, crop, crop), dtype=torch.uint8, generator=g)
    y = torch.randint(0, classes, (steps * batch,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)


def _seconds_per_step(stamps: list[float], warmup: int) -> float:
    return (stamps[-1] - stamps[warmup - 1]) / (len(stamps) - warmup)


def raw_loop(model: Classifier, loader: DataLoader, device: torch.device, warmup: int) -> float:
    """Seconds per step of the plain loop: to device, float, forward, cross-entropy, backward, SGD step."""
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    stamps = []
    for x, y in loader:
        x, y = x.to(device).float(), y.to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    return _seconds_per_step(stamps, warmup)


class _StepClock(L.Callback):
    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())


class _NoScheduler(ClassifierModule):
    """The module without its plateau scheduler, which steps once per epoch on a validation metric we skip."""

    def configure_optimizers(self):
        return super().configure_optimizers()["optimizer"]


def lightning_loop(
    module: ClassifierModule, loader: DataLoader, device: torch.device, warmup: int, precision: str = "32-true"
) -> float:
    """Seconds per step of `Trainer.fit` with deepconv's module (CSV logging on, as `deepconv train` does)."""
    clock = _StepClock()
    log = logging.getLogger("lightning.pytorch")
    level = log.level
    log.setLevel(logging.ERROR)  # no per-run banners and tips between the tables
    try:
        with tempfile.TemporaryDirectory() as logs, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = L.Trainer(
                accelerator=device.type, devices=1, max_epochs=1, precision=precision, logger=CSVLogger(logs),
                log_every_n_steps=10, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, limit_val_batches=0, callbacks=[clock],
            )
            trainer.fit(module, train_dataloaders=loader)
    finally:
        log.setLevel(level)
    return _seconds_per_step(clock.stamps, warmup)


def _module(arch: str, width: float, crop: int, classes: int, **options) -> _NoScheduler:
    torch.manual_seed(0)
    return _NoScheduler(arch, classes, width=width, crop_size=crop, **options)


def benchmark_train(
    arch: str, width: float, crop: int, classes: int, batch_size: int, steps: int, runs: int, device: torch.device,
    options: bool, compile: bool,
) -> list[Comparison]:
    """Lightning vs raw loop (time per step), and optionally NHWC + bf16 (+ compile) vs fp32 NCHW (images/s)."""
    warmup = max(1, steps // 5)
    loader = _data(steps, batch_size, crop, classes)
    raw, light = [], []
    for _ in range(runs):
        torch.manual_seed(0)
        raw.append(raw_loop(build(arch, num_classes=classes, width=width, crop_size=crop), loader, device, warmup))
        plain = _module(arch, width, crop, classes, channels_last=False, compile=False)
        light.append(lightning_loop(plain, loader, device, warmup))
    results = [
        Comparison(
            name="train step", unit="ms per step", ours=1000 * median(light), baseline=1000 * median(raw),
            ours_label="Lightning", baseline_label="raw PyTorch loop", higher_is_better=False, runs=runs,
            target="Lightning <= 1.05x raw (speedup >= 0.95)",
            extra={"model": f"{arch} width {width:g}, {crop}px, batch {batch_size}, {device.type}"},
        )
    ]
    if options:
        results.append(_options(arch, width, crop, classes, batch_size, steps, runs, device, compile, warmup))
    return results


def _options(arch, width, crop, classes, batch_size, steps, runs, device, compile, warmup) -> Comparison:
    loader = _data(steps, batch_size, crop, classes)
    fast_precision = "bf16-mixed"
    fast, plain = [], []
    for _ in range(runs):
        module = _module(arch, width, crop, classes, channels_last=True, compile=compile)
        fast.append(lightning_loop(module, loader, device, warmup, fast_precision))
        baseline = _module(arch, width, crop, classes, channels_last=False, compile=False)
        plain.append(lightning_loop(baseline, loader, device, warmup))
    flops = 3 * forward_flops(arch, crop, width, classes)  # forward + backward ~ 3 forward passes
    rate = batch_size / median(fast)
    extra = {"precision": fast_precision, "batch size": batch_size, "device": str(device),
             "model TFLOP/s": round(rate * flops / 1e12, 3)}
    peak = peak_tflops() if device.type == "cuda" else None
    if peak:
        extra["model FLOP utilisation"] = f"{100 * rate * flops / 1e12 / peak:.1f}% of {peak} TFLOP/s bf16"
    return Comparison(
        name="speed options", unit="images/s", ours=rate, baseline=batch_size / median(plain),
        ours_label="NHWC + bf16" + (" + compile" if compile else ""), baseline_label="NCHW fp32",
        higher_is_better=True, runs=runs, target="VGG-16 on one H100 >= 5,000 img/s", extra=extra,
    )
