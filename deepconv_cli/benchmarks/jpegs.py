"""ImageNet-like JPEG trees for the GPU benchmark: train/ and val/ class folders of photo-like pictures at
ImageNet's sizes (shorter side 333-500, aspect 3:4 to 4:3, sensor-like noise, quality 90), made with numpy and PIL.

Noise matters: without it the files are ~38 KB instead of ~64 KB and decode unrealistically fast."""

import os
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from deepconv_cli.benchmarks.loader import natural_image
from deepconv_cli.files import staged_file

FULL_SHORT_SIDE = (333, 500)


def _make(job: tuple[str, int, int, int, int]) -> None:
    """One picture, drawn from its own seed (the same file whatever the worker); kept when it already exists."""
    path, short_min, short_max, quality, seed = job
    if os.path.isfile(path):
        return
    rng = np.random.default_rng(seed)
    short = int(rng.integers(short_min, short_max + 1))
    aspect = float(rng.uniform(0.75, 4 / 3))
    size = (round(short * aspect), short) if aspect >= 1 else (short, round(short / aspect))
    with staged_file(path) as tmp:
        natural_image(rng, *size).save(tmp, "JPEG", quality=quality)


def make_tree(root: Path, classes: int, per_class: int, val_per_class: int,
              short_side: tuple[int, int] = FULL_SHORT_SIDE, workers: int = 0, quality: int = 90) -> Path:
    """root/{train,val}/cNNN/NNNNN.jpg; `workers` processes (0: this one). Existing files are kept, so a second
    call on the same root costs only the listing."""
    jobs = []
    for split, count in (("train", per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = root / split / f"c{c:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            seed = (0 if split == "train" else 1) * 10_000_000 + c * 100_000
            jobs += [(str(folder / f"{i:05d}.jpg"), *short_side, quality, seed + i) for i in range(count)]
    if workers > 1:
        with Pool(workers) as pool:
            pool.map(_make, jobs, chunksize=64)
    else:
        for job in jobs:
            _make(job)
    return root
