"""`deepconv benchmark loader|train|evaluate|startup|prepare|gpu`: medians of timed runs beside a baseline, as a table
and JSON."""

from pathlib import Path
from tempfile import TemporaryDirectory

from deepconv_cli.cli import run_function
from deepconv_cli.errors import usage


def _device(name: str):
    from deepconv_cli.training.resources import pick_device

    return pick_device(name)


def _finish(benchmark: str, comparisons: list, json: str | None, settings: dict) -> None:
    from deepconv_cli.benchmarks.report import print_table, write_json

    print_table(f"deepconv benchmark {benchmark} (median of {comparisons[0].runs} runs)", comparisons)
    if json:
        write_json(json, benchmark, comparisons, settings)
        print(f"wrote {json}")


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise usage(f"--{name} must be at least 1, got {value}")


def loader(
    data: str | None = None, images: int = 64, runs: int = 5, s_min: int = 256, s_max: int = 512, crop: int = 224,
    batch_size: int = 32, json: str | None = None, stages: bool = False, packed: bool = False,
) -> None:
    """Training-loader images/s of one worker: deepconv's transform vs torchvision's Resize(S) + RandomCrop.

    Args:
        data: folder for the synthetic 500x375 quality-90 JPEGs (made if missing, reused if present);
            default a temporary folder.
        images: JPEGs per timed pass.
        runs: timed passes per side (the median is reported).
        s_min: smallest training scale S.
        s_max: largest training scale S.
        crop: crop side.
        batch_size: loader batch size.
        json: also write the results to this JSON file.
        stages: also time each stage of deepconv's loader (read, header, decode with DCT downscale, resize,
            flip, collate) per image on one core, against the 8,000 images/s on 16 cores target.
        packed: also pack the same JPEGs with `deepconv data pack` and compare the packed training loader (litdata
            chunks) with the folder one, same images, same transform, one worker each.
    """
    from deepconv_cli.benchmarks.loader import benchmark_loader

    _positive(images=images, runs=runs, batch_size=batch_size)
    if not crop <= s_min <= s_max:
        raise usage(f"need crop <= s_min <= s_max, got {crop}, {s_min}, {s_max}")
    settings = {"images": images, "runs": runs, "s_min": s_min, "s_max": s_max, "crop": crop, "batch_size": batch_size,
                "stages": stages, "packed": packed}
    if data:
        results = benchmark_loader(Path(data), images, runs, s_min, s_max, crop, batch_size, stages, packed)
    else:
        with TemporaryDirectory(prefix="deepconv-bench-") as tmp:
            results = benchmark_loader(Path(tmp), images, runs, s_min, s_max, crop, batch_size, stages, packed)
    _finish("loader", results, json, settings)


def train(
    arch: str = "A", width: float = 0.125, crop: int = 32, classes: int = 10, batch_size: int = 64, steps: int = 30,
    runs: int = 5, device: str = "auto", options: bool | None = None, compile: bool = False, json: str | None = None,
    data: str | None = None, num_workers: int = 4, s_min: int | None = None, s_max: int | None = None,
    compare_train: bool = False,
) -> None:
    """Time per training step of `deepconv train` (its own CLI, module, callbacks, precision, memory format,
    compile setting and optimizer, on synthetic batches or --data) vs a raw PyTorch loop (same model and data).

    The JSON's `mfu` is the model FLOP utilisation of deepconv's side (null on CPU and on unknown GPUs).

    Args:
        arch: architecture name or alias (`deepconv models`).
        width: width multiplier (1.0 = the paper).
        crop: crop side (a multiple of 32).
        classes: number of classes.
        batch_size: images per step.
        steps: steps per timed run (the first fifth are warm-up and not timed).
        runs: timed runs per side (the median is reported).
        device: auto, cpu or cuda.
        options: also compare channels_last + bf16 autocast (+ compile) with plain fp32 NCHW; default: on CUDA.
        compile: include torch.compile in the speed options.
        json: also write the results to this JSON file.
        data: time the real training loader on this dataset root (train/ and val/ inside; `classes` then comes
            from its class folders) instead of synthetic batches: what `deepconv train` runs.
        num_workers: loader processes with --data.
        s_min: smallest training scale S with --data; default 256 x crop / 224.
        s_max: largest training scale S with --data; default 512 x crop / 224 (the paper's jitter).
        compare_train: also run `deepconv train` as a command (fresh process) with the same settings on --data and
            print its images/s beside this benchmark's (they should agree within 5%); needs --data.
    """
    from deepconv_cli.benchmarks.train_step import benchmark_train, real_data
    from deepconv_cli.models.registry import resolve_arch

    _positive(classes=classes, batch_size=batch_size, runs=runs)
    try:
        arch = resolve_arch(arch)
    except ValueError as e:
        raise usage(str(e)) from None
    if steps < 2 or crop % 32:
        raise usage(f"need steps >= 2 and crop a multiple of 32, got steps={steps}, crop={crop}")
    if compare_train and not data:
        raise usage("--compare_train needs --data DIR (deepconv train reads a dataset folder)")
    dev = _device(device)
    options = dev.type == "cuda" if options is None else options
    settings = {"arch": arch, "width": width, "crop": crop, "classes": classes, "batch_size": batch_size,
                "steps": steps, "runs": runs, "device": str(dev), "options": options, "compile": compile,
                "compare_train": compare_train}
    dm = None
    if data:
        s_min, s_max = s_min or round(256 * crop / 224), s_max or round(512 * crop / 224)
        dm = real_data(data, crop, batch_size, num_workers, s_min, s_max)
        settings |= {"data": data, "num_workers": num_workers, "s_min": s_min, "s_max": s_max,
                     "classes": dm.num_classes}
    results = benchmark_train(arch, width, crop, classes, batch_size, steps, runs, dev, options, compile, dm,
                              compare_train)
    _finish("train", results, json, settings)


def evaluate(
    arch: str = "A", width: float = 0.125, crop: int = 32, full: bool = False, images: int = 8, runs: int = 3,
    batch_size: int = 32, device: str = "auto", json: str | None = None,
) -> None:
    """Wall time of dense evaluation (3 scales, flips) vs 150-crop multi-crop on the same images.

    Args:
        arch: configuration.
        width: width multiplier.
        crop: crop side; the test scales are the paper's 256, 384, 512 scaled by crop / 224.
        full: the paper's VGG-16 (D) at full width and 224 crops, overriding arch, width and crop.
        images: images timed.
        runs: timed runs per method (the median is reported).
        batch_size: images (dense) or crops (multi-crop) per forward pass.
        device: auto, cpu or cuda.
        json: also write the results to this JSON file.
    """
    from deepconv_cli.benchmarks.evaluate import benchmark_evaluate

    _positive(images=images, runs=runs, batch_size=batch_size)
    if full:
        arch, width, crop = "D", 1.0, 224
    if crop % 32:
        raise usage(f"crop must be a multiple of 32, got {crop}")
    dev = _device(device)
    results = benchmark_evaluate(arch, width, crop, images, runs, batch_size, dev)
    settings = {"arch": arch, "width": width, "crop": crop, "images": images, "runs": runs,
                "batch_size": batch_size, "device": str(dev)}
    _finish("evaluate", results, json, settings)


def startup(runs: int = 5, only: str | None = None, json: str | None = None) -> None:
    """Seconds until `--help` of every subcommand and a mistyped path are answered, in fresh interpreters.

    Args:
        runs: timed runs per row (the median is reported).
        only: comma-separated row prefixes to time (e.g. "train,evaluate"); default: every row.
        json: also write the results to this JSON file.
    """
    from deepconv_cli.benchmarks.startup import benchmark_startup
    from deepconv_cli.cli.commands import COMMANDS, HELP_ACTIONS

    _positive(runs=runs)
    chosen = [part.strip() for part in only.split(",") if part.strip()] if only else None
    _finish("startup", benchmark_startup(runs, [*COMMANDS, *HELP_ACTIONS], chosen), json, {"runs": runs, "only": only})


def prepare(data: str | None = None, images: int = 512, workers: int = 2, runs: int = 3, cores: int = 16,
            json: str | None = None, packed: bool = False) -> None:
    """Time to the data: images/s of the bad-image scan and of the mean RGB / PCA statistics that a new training
    folder costs before its first step, with worker processes beside one process, and the projected seconds for
    100,000 new files on CORES cores (target: <= 60 s on 16).

    Args:
        data: folder for the synthetic 500x375 quality-90 JPEGs (made if missing, reused if present);
            default a temporary folder.
        images: JPEGs timed.
        workers: worker processes (as `--data.num_workers` gives training).
        runs: timed runs per side (the median is reported).
        cores: cores the projection is made for.
        json: also write the results to this JSON file.
        packed: add a row: seconds before the first step on IMAGES new files, folder (scan + statistics) against
            a pack (`deepconv data pack`; open + statistics), first run.
    """
    from deepconv_cli.benchmarks.prepare import benchmark_prepare, packed_vs_folder_first_step

    _positive(images=images, workers=workers, runs=runs, cores=cores)
    if workers < 2:
        raise usage(f"--workers must be at least 2 (one process is the baseline), got {workers}")
    settings = {"images": images, "workers": workers, "runs": runs, "cores": cores}
    def measure(root: Path) -> list:
        rows = benchmark_prepare(root, images, workers, runs, cores)
        return rows + ([packed_vs_folder_first_step(root, images, workers)] if packed else [])

    if data:
        results = measure(Path(data))
    else:
        with TemporaryDirectory(prefix="deepconv-bench-") as tmp:
            results = measure(Path(tmp))
    _finish("prepare", results, json, settings)
    print(f"projected for 100,000 new files on {cores} cores (one-process rates x cores): "
          f"{results[0].extra['projected_seconds_100k_files']:.0f} s")


# --- `deepconv benchmark gpu` (issue 22.5): every GPU figure in one command; its own section, apart from `train` ---
def gpu(out: str | None = None, size: str = "full", allow_cpu: bool = False, data: str | None = None,
        workers: int | None = None, recipe: str = "recipes/imagenet/vgg_d_s256_512.yaml",
        peak_tflops: float | None = None) -> None:
    """Every GPU figure README states, in one command (~6 min on one H100/H200): VGG-16 training img/s as shipped
    (`deepconv train -c RECIPE`), raw PyTorch on the same GPU, MFU, time to first step, peak memory, the loader
    alone (CPU decode and device decode) and evaluation img/s (dense 3 scales with flips, multi-crop, centre), on
    generated ImageNet-sized JPEGs. Writes OUT/gpu.json and OUT/gpu.md (and OUT/train.log).

    Args:
        out: folder for gpu.json, gpu.md, train.log and the generated JPEGs (OUT/jpegs, kept for reruns); required.
        size: full (the figures) or tiny (the same code path in seconds, for tests and CPU runs).
        allow_cpu: run on the CPU when no CUDA GPU is present (with --size tiny: checks the code path).
        data: an ImageNet-like train/ + val/ folder to use (read only) instead of generating OUT/jpegs; it needs
            at least batch x (warm-up + timed) training images (256 x 55 at --size full).
        workers: loader processes; default: the cores available.
        recipe: the training recipe measured as shipped.
        peak_tflops: the device's dense bf16 peak for MFU; default: deepconv's table of GPUs (training/speed.py).
    """
    if not out:
        raise usage("deepconv benchmark gpu needs --out DIR (where gpu.json and gpu.md go)")
    if Path(out).exists() and not Path(out).is_dir():
        raise usage(f"--out {out} is a file: give a folder (gpu.json, gpu.md and the JPEGs go in it)")
    if size not in ("full", "tiny"):
        raise usage(f"--size must be full or tiny, got {size!r}")
    if workers is not None:
        _positive(workers=workers)
    if data and not Path(data).is_dir():
        raise usage(f"--data folder not found: {data}")
    recipe_path = Path(recipe)
    if not recipe_path.is_file():
        recipe_path = Path(__file__).resolve().parents[2] / recipe  # a source checkout run from elsewhere
    if not recipe_path.is_file():
        raise usage(f"recipe not found: {recipe} (run from a deepconv checkout or pass --recipe)")
    import torch

    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif allow_cpu:
        device = torch.device("cpu")
    else:
        raise usage("gpu: no CUDA GPU on this machine, nothing measured (--allow_cpu runs the same code on the CPU)")
    from deepconv_cli.benchmarks.gpu import benchmark_gpu, default_workers

    result = benchmark_gpu(Path(out), size, device, recipe_path.resolve(), Path(data) if data else None,
                           workers or default_workers(), peak_tflops)
    print((Path(out) / "gpu.md").read_text(), end="")
    print(f"wrote {Path(out) / 'gpu.json'} and gpu.md in {result['seconds']:.0f} s")
# --- end of `deepconv benchmark gpu` ---


def main(argv: list[str]) -> int:
    run_function([loader, train, evaluate, startup, prepare, gpu], argv, "deepconv benchmark")
    return 0
