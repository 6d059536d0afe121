"""Training-step benchmark: `deepconv train`'s loop vs a raw PyTorch loop; GPU speed options (NHWC, bf16, compile).

The measured side is `deepconv train` itself: training/run.py's CLI and training/fit.py's fit (module, callbacks,
precision, memory format, compile setting, optimizer), timed by TrainClock (benchmarks/train_clock.py), on
SyntheticData's uint8 crops made in memory, or with `data` on the real `ImageFolderData` training loader (decode,
scale jitter, crop, flip, workers; the module adds the PCA colour shift on the device). Model FLOP utilisation
(`mfu`) counts 3 forward passes per image (forward + backward) against the GPU's dense bf16 peak; None on CPU and
on GPUs whose peak is not in the table.
"""

import contextlib
import gc
import io
import itertools
import json
import logging
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from deepconv_cli.benchmarks.report import Comparison, median
from deepconv_cli.benchmarks.synthetic_data import SyntheticData
from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.errors import failure
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.registry import build, flop_count
from deepconv_cli.training import speed
from deepconv_cli.training.fit import fit
from deepconv_cli.training.resources import set_threads
from deepconv_cli.training.run import build_cli


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


def _warmup(steps: int) -> int:
    return max(1, steps // 5)


def train_argv(arch: str, width: float, crop: int, classes: int, batch_size: int, steps: int, device: torch.device,
               run_dir: Path, precision: str = "32-true", channels_last: bool = False, compile: bool = False,
               data: ImageFolderData | None = None, clock: Path | None = None) -> list[str]:
    """`deepconv train`'s command line for these settings (without the data options, see `data_argv`), stopped
    after `steps` steps; with `clock`, TrainClock times it (images/s after the first fifth of the steps)."""
    argv = [f"--model.arch={arch}", f"--model.width={width}", f"--model.channels_last={str(channels_last).lower()}",
            f"--model.compile={str(compile).lower()}", f"--trainer.precision={precision}",
            f"--trainer.accelerator={device.type}", "--trainer.devices=1", f"--trainer.max_steps={steps}",
            f"--data.crop_size={crop}", f"--data.batch_size={batch_size}", f"--trainer.default_root_dir={run_dir}",
            # one validation batch (the plateau scheduler needs its metric), no bar or summary between the tables
            "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false"]
    if clock is not None:
        argv += ["--trainer.callbacks+=deepconv_cli.benchmarks.train_clock.TrainClock",
                 f"--trainer.callbacks.out={clock}", f"--trainer.callbacks.warmup={_warmup(steps)}",
                 f"--trainer.callbacks.window={steps - _warmup(steps)}"]
    return argv + data_argv(data, classes, steps)


def data_argv(data: ImageFolderData | None, classes: int, steps: int) -> list[str]:
    """The data options: the real training folder (as `deepconv train` reads it) or SyntheticData's."""
    if data is None:
        return [f"--data.class_count={classes}", f"--data.steps={steps}"]
    return [f"--data.data_dir={data.root}", f"--data.num_workers={data.num_workers}", f"--data.s_min={data.s_min}",
            f"--data.s_max={data.s_max}"]


def build_train_cli(argv: list[str], data: ImageFolderData | None):
    """`deepconv train`'s LightningCLI (training/run.py) for `argv`: the real training data module with `data`,
    else SyntheticData; module, callbacks, precision, memory format, compile setting and optimizer as train's."""
    return build_cli(argv, prog="deepconv benchmark train",
                     data_class=ImageFolderData if data is not None else SyntheticData)


def lightning_loop(arch: str, width: float, crop: int, classes: int, batch_size: int, steps: int,
                   device: torch.device, precision: str = "32-true", channels_last: bool = False,
                   compile: bool = False, data: ImageFolderData | None = None, metrics: dict | None = None) -> float:
    """Seconds per step of `deepconv train` itself (training/run.py's CLI, training/fit.py's fit) on synthetic
    batches or the real loader, timed by TrainClock. `metrics`, when given, receives the run's `train/...` figures of
    `deepconv train`'s EpochThroughput (e.g. the data wait)."""
    log = logging.getLogger("lightning.pytorch")
    level = log.level
    log.setLevel(logging.ERROR)  # no per-run banners and tips between the tables
    said = io.StringIO()
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), contextlib.redirect_stdout(said):
            warnings.simplefilter("ignore")
            clock = Path(tmp) / "clock.json"
            argv = train_argv(arch, width, crop, classes, batch_size, steps, device, Path(tmp) / "run", precision,
                              channels_last, compile, data, clock)
            cli = build_train_cli(argv, data)
            fit(cli)
            if metrics is not None:
                metrics.update({k: float(v) for k, v in cli.trainer.callback_metrics.items()
                                if k.startswith("train/")})
            result = json.loads(clock.read_text())
    except BaseException:
        sys.stderr.write(said.getvalue())
        raise
    finally:
        log.setLevel(level)
    return batch_size / result["images_per_second"]


def train_command_loop(argv: list[str], clock: Path) -> float:
    """Images/s of `deepconv train ARGV` run as a user runs it (a fresh process), timed by TrainClock."""
    done = subprocess.run([sys.executable, "-m", "deepconv_cli", "train", *argv], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0 or not clock.is_file():
        raise failure(f"deepconv train exited {done.returncode} before its timed steps: "
                      f"{(done.stderr.strip().splitlines() or [''])[-1][:200]}")
    return json.loads(clock.read_text())["images_per_second"]


def benchmark_train(
    arch: str, width: float, crop: int, classes: int, batch_size: int, steps: int, runs: int, device: torch.device,
    options: bool, compile: bool, data: ImageFolderData | None = None, compare_train: bool = False,
) -> list[Comparison]:
    """`deepconv train`'s loop (fp32 NCHW eager) vs a raw loop (time per step); optionally NHWC + bf16 (+ compile)
    vs fp32 NCHW (images/s), and this benchmark's figure beside `deepconv train` run as a command on `data`.

    With `data` both sides read the real training loader (its class count replaces `classes`).
    """
    warmup = _warmup(steps)
    classes = data.num_classes if data is not None else classes
    source = data if data is not None else _data(steps, batch_size, crop, classes)
    set_threads(data.num_workers if data is not None else 0)  # what the CLI sets: both sides run with it
    raw, light, waits = [], [], []
    for _ in range(runs):
        torch.manual_seed(0)
        loader = data.train_dataloader() if data is not None else source
        raw.append(raw_loop(build(arch, num_classes=classes, width=width, crop_size=crop), loader, device, warmup,
                            steps))
        seen: dict = {}
        light.append(lightning_loop(arch, width, crop, classes, batch_size, steps, device, data=data, metrics=seen))
        waits += [seen["train/data_wait_fraction"]] if "train/data_wait_fraction" in seen else []
    results = [
        Comparison(
            name="train step", unit="ms per step", ours=1000 * median(light), baseline=1000 * median(raw),
            ours_label="deepconv train", baseline_label="raw PyTorch loop", higher_is_better=False, runs=runs,
            target="deepconv train <= 1.05x raw (speedup >= 0.95)",
            extra={"model": f"{arch} width {width:g}, {crop}px, batch {batch_size}, {device.type}",
                   "data": f"real loader on {data.root}" if data is not None else "synthetic uint8 batches",
                   "images/s (Lightning)": round(batch_size / median(light), 1),
                   # deepconv train's per-epoch figure over the whole run, warm-up and loader start included
                   "data wait fraction (Lightning, whole run)": round(median(waits), 3) if waits else None},
            mfu=mfu(batch_size / median(light), arch, crop, width, classes) if device.type == "cuda" else None,
        )
    ]
    if options:
        results.append(_options(arch, width, crop, classes, batch_size, steps, runs, device, compile, data))
    if compare_train:
        results.append(_against_train(arch, width, crop, classes, batch_size, steps, runs, device, data))
    return results


def _against_train(arch, width, crop, classes, batch_size, steps, runs, device, data) -> Comparison:
    """This benchmark's images/s beside `deepconv train ...` (same settings and data) run in a fresh process,
    the two alternating run by run (so a busy machine slows both alike)."""
    rates, ours = [], []
    for _ in range(runs):
        gc.collect()
        ours.append(batch_size / lightning_loop(arch, width, crop, classes, batch_size, steps, device, data=data))
        gc.collect()
        with tempfile.TemporaryDirectory() as tmp:
            argv = train_argv(arch, width, crop, classes, batch_size, steps, device, Path(tmp) / "run", data=data,
                              clock=Path(tmp) / "clock.json")
            rates.append(train_command_loop(argv, Path(tmp) / "clock.json"))
    command = "deepconv train " + " ".join(a for a in argv if "callbacks" not in a and "default_root_dir" not in a)
    return Comparison(
        name="benchmark vs deepconv train", unit="images/s", ours=median(ours),
        baseline=median(rates), ours_label="deepconv benchmark train", baseline_label="deepconv train (command)",
        higher_is_better=True, runs=runs, target="within 5% (speedup 0.95-1.05)",
        extra={"command": command + " + TrainClock"},
    )


def _options(arch, width, crop, classes, batch_size, steps, runs, device, compile, data) -> Comparison:
    fast_precision = "bf16-mixed"
    fast, plain = [], []
    for _ in range(runs):
        fast.append(lightning_loop(arch, width, crop, classes, batch_size, steps, device, fast_precision,
                                   channels_last=True, compile=compile, data=data))
        plain.append(lightning_loop(arch, width, crop, classes, batch_size, steps, device, data=data))
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
