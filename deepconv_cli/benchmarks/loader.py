"""Loader benchmark: deepconv's training transform vs torchvision's plain Resize + RandomCrop, on synthetic JPEGs."""

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from deepconv_cli.benchmarks.report import Comparison, median, median_seconds
from deepconv_cli.data import transforms
from deepconv_cli.data.folder import ImageTree
from deepconv_cli.data.transforms import train_transform
from deepconv_cli.files import staged_file

BICUBIC = Image.Resampling.BICUBIC


def natural_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Photo-like content: smooth colour gradients, mid-frequency texture and sensor-like noise."""
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((width, height), BICUBIC)
    texture = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).resize((width, height), BICUBIC)
    pixels = 0.7 * np.asarray(coarse, np.float32) + 0.3 * np.asarray(texture, np.float32)
    pixels += rng.normal(0, 8, pixels.shape)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def make_jpegs(root: Path, count: int, size: tuple[int, int] = (500, 375), quality: int = 90, seed: int = 0) -> Path:
    """root/c0/*.jpg: `count` ImageNet-sized JPEGs (every fourth one portrait); existing files are kept."""
    folder = root / "c0"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        w, h = size if i % 4 else size[::-1]
        img = natural_image(rng, w, h)
        path = folder / f"{i:05d}.jpg"
        if path.is_file():
            continue
        with staged_file(path) as tmp:
            img.save(tmp, "JPEG", quality=quality)
    return root


def baseline_transform(s_min: int, s_max: int, crop: int) -> v2.Compose:
    """torchvision's straightforward pipeline: the whole image resized to S, then a random crop and a flip."""
    return v2.Compose(
        [v2.RandomResize(s_min, s_max + 1), v2.RandomCrop(crop), v2.RandomHorizontalFlip(), v2.PILToTensor()]
    )


def _epoch(dataset, batch_size: int) -> int:
    random.seed(0)
    torch.manual_seed(0)
    seen = 0
    for x, _ in DataLoader(dataset, batch_size=batch_size, num_workers=0):
        seen += x.shape[0]
    return seen


def benchmark_loader(
    data: Path, images: int, runs: int, s_min: int, s_max: int, crop: int, batch_size: int, stages: bool = False,
    packed: bool = False,
) -> list[Comparison]:
    """Images/s of one loader process (num_workers=0, one torch thread, like a DataLoader worker), both sides;
    with `stages`, also the per-stage breakdown of deepconv's side (`benchmarks/stages.py`)."""
    make_jpegs(data, images)
    ours = ImageTree(data, train_transform(s_min, s_max, crop))
    base = ImageFolder(str(data), transform=baseline_transform(s_min, s_max, crop))
    ours.samples = ours.samples[:images]
    base.samples = base.samples[:images]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times: dict[str, list[float]] = {"ours": [], "base": []}
        for _ in range(runs):  # interleaved, so load from other processes hits both sides alike
            times["ours"] += median_seconds(lambda: _epoch(ours, batch_size), 1, warmup=0)
            times["base"] += median_seconds(lambda: _epoch(base, batch_size), 1, warmup=0)
    finally:
        torch.set_num_threads(threads)
    n = len(ours.samples)
    extra = []
    if stages:
        from deepconv_cli.benchmarks.stages import benchmark_stages

        extra.append(benchmark_stages([Path(p) for p, _ in ours.samples], runs, s_min, s_max, crop, batch_size))
    if packed:
        extra.append(packed_vs_folder(ours, runs, batch_size))
    return [
        Comparison(
            name="loader",
            unit="images/s per worker",
            ours=n / median(times["ours"]),
            baseline=n / median(times["base"]),
            ours_label="box-only resize, uint8",
            baseline_label="Resize(S)+RandomCrop",
            higher_is_better=True,
            runs=runs,
            target=">= 2x (aim 3x)",
            extra={
                "jpeg decoder": "simplejpeg (libjpeg-turbo)" if transforms.simplejpeg is not None else "PIL",
                "both sides include": "JPEG decode, S ~ U[s_min, s_max], crop, flip, uint8 CHW tensor, collate",
                "neither side includes": "mean RGB / PCA colour shift (deepconv applies them on the device)",
            },
        )
    ] + extra


def packed_vs_folder(folder: ImageTree, runs: int, batch_size: int) -> Comparison:
    """The same images through the packed training loader (litdata chunks, `deepconv data pack`) and the folder
    one: one worker each (num_workers=0, one torch thread), the same transform."""
    import tempfile

    from deepconv_cli.data.packed import packed_train_set
    from deepconv_cli.data.packing import pack

    with tempfile.TemporaryDirectory(prefix="deepconv-pack-") as tmp:
        tree = Path(tmp) / "tree"
        for split in ("train", "val"):
            (tree / split / "c0").mkdir(parents=True)
            for path, _ in folder.samples:
                (tree / split / "c0" / Path(path).name).symlink_to(Path(path).resolve())
        pack(tree, str(Path(tmp) / "packed"), workers=1)
        stream = packed_train_set(Path(tmp) / "packed", folder.transform, 0, drop_last=False)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            times: dict[str, list[float]] = {"packed": [], "folder": []}
            for _ in range(runs):
                times["packed"] += median_seconds(lambda: _epoch(stream, batch_size), 1, warmup=0)
                times["folder"] += median_seconds(lambda: _epoch(folder, batch_size), 1, warmup=0)
        finally:
            torch.set_num_threads(threads)
    n = len(folder.samples)
    return Comparison(name="packed loader", unit="images/s per worker", ours=n / median(times["packed"]),
                      baseline=n / median(times["folder"]), ours_label="litdata chunks (data pack)",
                      baseline_label="ImageFolder files", higher_is_better=True, runs=runs,
                      extra={"both sides": "the same JPEGs and training transform, one loader process"})
