"""`deepconv benchmark gpu`: every GPU figure README states, measured in one command (about 6 minutes on one H100
or H200 at `--size full`) on generated ImageNet-sized JPEGs; JSON and a markdown table in the output folder.

Stages, each reusing the package's own code:
1. JPEGs: `benchmarks/jpegs.py` (train/ + val/, shorter side 333-500, noisy, quality 90), kept for reruns.
2. Loader alone: the training loader of `ImageFolderData` (CPU decode in the workers) and the `decode_on: cuda`
   loader (`data/device_decode.py`: bytes from the workers, batched decode and crops on the device), images/s
   delivered to the device after warm-up batches. Building the data module also builds the folder's caches.
3. Training as shipped: `deepconv train -c recipes/imagenet/vgg_d_s256_512.yaml` in a fresh process (its
   precision, channels_last, compile, loader and callbacks as a user gets them), timed by
   `benchmarks/train_clock.py`: images/s after warm-up, time from the command's start to the end of its first
   step, peak memory.
4. Raw PyTorch on the same GPU: the same network (registry), synthetic batches, bf16 autocast + channels_last +
   fused SGD on CUDA, compiled when the shipped run compiles (a bare PyTorch loop).
5. Evaluation: `benchmarks/evaluate.py` (dense 3 scales with flips vs 150-crop multi-crop, network time) and the
   centre crop at the middle scale, fp32 as `deepconv evaluate` runs.
MFU for both training figures: `training/speed.mfu` (3 forward passes' FLOPs per image over the bf16 peak).
"""

import copy
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deepconv_cli.benchmarks.evaluate import PAPER_SCALES, benchmark_evaluate
from deepconv_cli.benchmarks.jpegs import FULL_SHORT_SIDE, make_tree
from deepconv_cli.benchmarks.loader import natural_image
from deepconv_cli.benchmarks.report import machine
from deepconv_cli.errors import failure
from deepconv_cli.files import write_text_atomically
from deepconv_cli.models.registry import build, flop_count
from deepconv_cli.training import speed

ARCH = "D"  # the recipe's network; the figures are VGG-16's
GIB = 2**30


@dataclass(frozen=True)
class Size:
    """How much each stage does: `full` for the GPU figures, `tiny` for the same code path on a CPU (tests)."""

    classes: int
    per_class: int
    val_per_class: int
    short_side: tuple[int, int]
    s_min: int
    s_max: int
    crop: int
    width: float
    batch: int
    warmup: int  # training steps before the clock starts (compile, cuDNN autotuning, loader start)
    window: int  # training steps timed
    loader_batches: int
    eval_images: int
    eval_batch: int


SIZES = {
    "full": Size(100, 150, 2, FULL_SHORT_SIDE, 256, 512, 224, 1.0, 256, 15, 40, 30, 32, 32),
    "tiny": Size(2, 16, 2, (64, 96), 36, 64, 32, 0.0625, 4, 2, 3, 3, 2, 8),
}

# the JSON's figures, in the markdown table's order: key -> (what, unit)
FIGURES = {
    "train_images_per_second": ("VGG-16 training as shipped (`deepconv train`, recipe vgg_d_s256_512)", "img/s"),
    "train_mfu": ("model FLOP utilisation of that run", "% of bf16 peak"),
    "train_time_to_first_step_s": ("time from the command's start to its first step's end", "s"),
    "train_peak_memory_gib": ("peak memory of that run", "GiB"),
    "raw_images_per_second": ("raw PyTorch, same network, synthetic batches", "img/s"),
    "raw_mfu": ("model FLOP utilisation of raw PyTorch", "% of bf16 peak"),
    "raw_peak_memory_gib": ("peak memory of raw PyTorch", "GiB"),
    "train_vs_raw": ("shipped training / raw PyTorch", "x"),
    "loader_cpu_decode_images_per_second": ("loader alone, CPU decode (data.decode_on cpu)", "img/s"),
    "loader_device_decode_images_per_second": ("loader alone, device decode (data.decode_on cuda)", "img/s"),
    "eval_dense_images_per_second": ("evaluation, dense, 3 scales with flips", "img/s"),
    "eval_multicrop_images_per_second": ("evaluation, 150-crop multi-crop (3 scales)", "img/s"),
    "eval_centre_images_per_second": ("evaluation, centre crop, 1 scale", "img/s"),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _say(message: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)


def loader_rates(root: Path, size: Size, workers: int, device: torch.device) -> dict:
    """Images/s the training loader delivers to `device`, CPU decode and device decode, after 2 warm-up batches."""
    from torch.utils.data import DataLoader

    from deepconv_cli.data.datamodule import ImageFolderData
    from deepconv_cli.data.device_decode import DeferredTrainCrop, collate

    dm = ImageFolderData(str(root), s_min=size.s_min, s_max=size.s_max, crop_size=size.crop, batch_size=size.batch,
                         num_workers=workers)
    dm.prepare_data()  # the bad-image scan and statistics caches, as `deepconv train` builds them
    dm.setup("fit")
    cpu_loader = dm.train_dataloader()
    deferred = copy.copy(dm.train_set)  # the same files; the CPU loader's workers keep the CPU transform
    deferred.transform = DeferredTrainCrop(size.s_min, size.s_max, size.crop)
    device_loader = DataLoader(deferred, batch_size=size.batch, shuffle=True, num_workers=workers,
                               pin_memory=device.type == "cuda", persistent_workers=False, drop_last=True,
                               collate_fn=collate)

    def rate(loader, make: bool) -> float:
        warm, images, started = 2, 0, 0.0
        for i, batch in enumerate(loader):
            if i == warm:
                _sync(device)
                started = time.perf_counter()
            batch = batch.to(device, non_blocking=True).make() if make else \
                [t.to(device, non_blocking=True) for t in batch]
            if i >= warm:
                images += len(batch[1])
            if i + 1 == warm + size.loader_batches:
                break
        _sync(device)
        return images / (time.perf_counter() - started)

    device_decode = rate(device_loader, True) if device.type == "cuda" else None  # nvJPEG needs a CUDA device
    return {"loader_cpu_decode_images_per_second": rate(cpu_loader, False),
            "loader_device_decode_images_per_second": device_decode}


def train_as_shipped(root: Path, out: Path, recipe: Path, size: Size, workers: int) -> tuple[dict, list[str]]:
    """`deepconv train -c RECIPE` in a fresh process on the JPEGs, stopped after warm-up + window steps by
    TrainClock; its run folder (checkpoint included) is removed afterwards, its output kept in out/train.log."""
    run = Path(tempfile.mkdtemp(prefix="train-run-", dir=out))
    clock = run / "clock.json"
    argv = ["train", "-c", str(recipe), f"--data.data_dir={root}", f"--trainer.default_root_dir={run / 'run'}",
            f"--data.num_workers={workers}", "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false",
            "--trainer.callbacks+=deepconv_cli.benchmarks.train_clock.TrainClock", f"--trainer.callbacks.out={clock}",
            f"--trainer.callbacks.warmup={size.warmup}", f"--trainer.callbacks.window={size.window}"]
    if size != SIZES["full"]:  # the recipe's network and data scaled down, everything else as shipped
        argv += [f"--model.width={size.width}", f"--data.crop_size={size.crop}", f"--data.s_min={size.s_min}",
                 f"--data.s_max={size.s_max}", f"--data.batch_size={size.batch}", "--data.stats_max_images=64"]
    try:
        started = time.time()
        with open(out / "train.log", "w", encoding="utf-8") as log:
            done = subprocess.run([sys.executable, "-m", "deepconv_cli", *argv], stdout=log, stderr=subprocess.STDOUT,
                                  check=False)
        if done.returncode != 0 or not clock.is_file():
            raise failure(f"the training run exited {done.returncode} before its timed steps; see "
                               f"{out / 'train.log'}")
        result = json.loads(clock.read_text())
    finally:
        shutil.rmtree(run, ignore_errors=True)
    result["time_to_first_step_s"] = result["first_step_end_unix"] - started
    return result, ["deepconv", *argv]


def raw_pytorch(size: Size, classes: int, device: torch.device, compile: bool) -> dict:
    """Images/s of a bare training loop on the same network: synthetic batches; on CUDA bf16 autocast,
    channels_last and fused SGD (the ceiling's settings); compiled when the shipped run compiled."""
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    model = build(ARCH, num_classes=classes, width=size.width, crop_size=size.crop).to(device).train()
    if cuda:
        model = model.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, fused=True if cuda else None)
    forward = torch.compile(model) if compile else model
    x = torch.randn(size.batch, 3, size.crop, size.crop, device=device) * 60
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (size.batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(size.warmup):
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(size.window):
        step()
    _sync(device)
    rate = size.batch * size.window / (time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated(device) if cuda else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {"images_per_second": rate, "peak_memory_bytes": peak}


def evaluation_rates(size: Size, device: torch.device) -> dict:
    """Images/s of dense (3 scales, flips) and multi-crop evaluation (benchmarks/evaluate.py, network time), and
    of the centre crop at the middle scale, on VGG-16 in fp32."""
    from deepconv_cli.evaluation.crops import multiscale_crop_posteriors
    from deepconv_cli.evaluation.dense import rescale_shorter, to_uint8_tensor

    both = benchmark_evaluate(ARCH, size.width, size.crop, size.eval_images, 1, size.eval_batch, device)[0]
    q = round(PAPER_SCALES[1] * size.crop / 224)
    pictures = [natural_image(np.random.default_rng(i), round(q * 4 / 3), q) for i in range(4)]
    images = [{q: to_uint8_tensor(rescale_shorter(p, q))} for p in pictures] * (8 * size.eval_images // 4)
    torch.manual_seed(0)
    model = build(ARCH, num_classes=1000, width=size.width, crop_size=size.crop).to(device).eval()
    multiscale_crop_posteriors(model, images[:1], [q], "center", False, size.eval_batch)  # warm-up
    _sync(device)
    started = time.perf_counter()
    multiscale_crop_posteriors(model, images, [q], "center", False, size.eval_batch).cpu()
    centre = len(images) / (time.perf_counter() - started)
    return {"eval_dense_images_per_second": 1 / both.ours, "eval_multicrop_images_per_second": 1 / both.baseline,
            "eval_centre_images_per_second": centre}


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def benchmark_gpu(out: Path, size_name: str, device: torch.device, recipe: Path, data: Path | None,
                  workers: int, peak_tflops: float | None) -> dict:
    """Run every stage, write out/gpu.json and out/gpu.md; return the JSON's content."""
    size = SIZES[size_name]
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    root = data or out / "jpegs"
    if data is None:  # a given folder is used as it is, never written to
        make_tree(root, size.classes, size.per_class, size.val_per_class, size.short_side, workers)
    _say(f"JPEGs ready under {root}", started)
    figures = loader_rates(root, size, workers, device)
    _say("loader measured", started)
    shipped, command = train_as_shipped(root, out, recipe, size, workers)
    _say(f"training as shipped measured ({shipped['images_per_second']:,.1f} img/s)", started)
    raw = raw_pytorch(size, size.classes, device, shipped["compiled"])
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the raw loop's network and batches, before evaluation's
    _say(f"raw PyTorch measured ({raw['images_per_second']:,.1f} img/s)", started)
    figures |= evaluation_rates(size, device)
    _say("evaluation measured", started)
    peak = peak_tflops or (speed.peak_tflops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None)
    flops = flop_count(ARCH, crop_size=size.crop, width=size.width, num_classes=size.classes)
    figures |= {
        "train_images_per_second": shipped["images_per_second"],
        "train_mfu": _percent(speed.mfu(shipped["images_per_second"], flops, peak)),
        "train_time_to_first_step_s": shipped["time_to_first_step_s"],
        "train_peak_memory_gib": shipped["peak_memory_bytes"] / GIB,
        "raw_images_per_second": raw["images_per_second"],
        "raw_mfu": _percent(speed.mfu(raw["images_per_second"], flops, peak)),
        "raw_peak_memory_gib": raw["peak_memory_bytes"] / GIB,
        "train_vs_raw": shipped["images_per_second"] / raw["images_per_second"],
    }
    result = {
        "benchmark": "gpu",
        "machine": machine(),
        "settings": {"size": size_name, "device": str(device), "data": str(root), "workers": workers,
                     "peak_tflops": peak, "recipe": str(recipe), "train_command": " ".join(command),
                     "train_precision": shipped["precision"], "train_compiled": shipped["compiled"],
                     "train_channels_last": shipped["channels_last"], "peak_memory_of": shipped["peak_memory_of"],
                     **vars(size)},
        "figures": {key: figures[key] for key in FIGURES},
        "seconds": time.perf_counter() - started,
    }
    write_text_atomically(out / "gpu.json", json.dumps(result, indent=1))
    write_text_atomically(out / "gpu.md", markdown(result))
    return result


def markdown(result: dict) -> str:
    """The figures as a markdown table, with what they were measured on and how to measure them again."""
    s, m = result["settings"], result["machine"]
    lines = [f"Measured by `deepconv benchmark gpu --size {s['size']}` on {m['device']} (torch {m['torch']}, "
             f"{m['cpu_count']} CPU cores, {s['workers']} loader workers) in {result['seconds']:.0f} s.", "",
             f"Training: batch {s['batch']}, S in [{s['s_min']}, {s['s_max']}], {s['crop']} px crops, width "
             f"{s['width']:g}, precision {s['train_precision']}, channels_last {s['train_channels_last']}, compiled "
             f"{s['train_compiled']}; {s['window']} steps timed after {s['warmup']}. Peak memory: "
             f"{s['peak_memory_of']}. Evaluation: fp32, batch {s['eval_batch']}.", "",
             "| figure | value | unit |", "|---|---:|---|"]
    for key, (what, unit) in FIGURES.items():
        value = result["figures"][key]
        why = "no known bf16 peak" if "mfu" in key else "no CUDA device"
        shown = f"not measured ({why})" if value is None else f"{value:,.2f}" if value < 100 else \
            f"{value:,.0f}"
        lines.append(f"| {what} | {shown} | {unit} |")
    return "\n".join(lines) + "\n"


def default_workers() -> int:
    """Loader processes: the cores this process may use (all of the GPU machine's 16)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
