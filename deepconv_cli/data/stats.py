"""Mean RGB and the RGB covariance eigen-decomposition (AlexNet's PCA colour shift) over a training set, cached."""

import json
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from rich.progress import Progress

from deepconv_cli.data.images import UnreadableImage, open_rgb
from deepconv_cli.data.scan import file_signature
from deepconv_cli.errors import failure
from deepconv_cli.files import write_text_atomically

STATS_FILE = ".deepconv-stats.json"


def evenly_spaced(files: list[str], limit: int) -> list[str]:
    if limit <= 0 or len(files) <= limit:
        return files
    idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
    return [files[i] for i in idx]


CHUNK = 32  # images per unit of work: sums are combined chunk by chunk in file order, whatever the workers
PARALLEL_MIN = 1000  # fewer images are summed in-process: starting a pool would cost more than it saves


def _chunk_sums(paths: list, opener=open_rgb) -> tuple[np.ndarray, np.ndarray, int] | str:
    """(sum of RGB, sum of RGB outer products, pixels) over the images `opener(path)` in 0..1 units, or the first
    unreadable one's one-line problem."""
    total, outer, count = np.zeros(3), np.zeros((3, 3)), 0
    for path in paths:
        try:
            px = np.asarray(opener(path), dtype=np.float64).reshape(-1, 3) / 255.0
        except UnreadableImage as e:
            return f"cannot read image {path}: {e} (training skips such files with --data.skip_bad_images)"
        total += px.sum(0)
        outer += px.T @ px
        count += len(px)
    return total, outer, count


def compute_stats(files: list[str], max_images: int = 10000, progress: bool = True, workers: int = 0,
                  parallel_min: int = PARALLEL_MIN, opener=open_rgb, keys: dict | None = None) -> dict:
    """Per-pixel RGB mean (0..255) and covariance eigenpairs (0..1 units) over up to `max_images` images.

    Images are taken evenly spaced over the sorted list, so the result is deterministic. Every pixel of every
    chosen image counts once (sums kept in float64, added up in chunks of CHUNK images in file order, so the
    number of `workers` decoding processes does not change a bit of the result). A packed split names its images
    by file name and opens them by item index: `opener(keys[name])`, `opener` picklable for the workers.
    """
    chosen = evenly_spaced(sorted(files), max_images)
    chosen = [keys[name] for name in chosen] if keys is not None else chosen
    chunks = [chosen[i : i + CHUNK] for i in range(0, len(chosen), CHUNK)]
    total, outer, count = np.zeros(3), np.zeros((3, 3)), 0
    with Progress(disable=not progress, transient=True) as bar, ExitStack() as stack:
        task = bar.add_task("mean RGB + PCA", total=len(chosen))
        if workers > 1 and len(chosen) >= parallel_min:
            # spawn, not fork: the caller may hold CUDA or process-group threads
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=get_context("spawn")))
            stack.callback(pool.shutdown, cancel_futures=True)  # a bad image or ^C: drop the chunks not started
            results = pool.map(partial(_chunk_sums, opener=opener), chunks)
        else:
            results = map(partial(_chunk_sums, opener=opener), chunks)
        for chunk, result in zip(chunks, results):
            if isinstance(result, str):
                raise failure(result)
            total, outer, count = total + result[0], outer + result[1], count + result[2]
            bar.advance(task, len(chunk))
    if count == 0:
        raise ValueError("no images to compute statistics from")
    mean = total / count
    cov = outer / count - np.outer(mean, mean)
    eigval, eigvec = np.linalg.eigh(cov)
    order = eigval.argsort()[::-1]
    return {
        "mean": (mean * 255).tolist(),
        "pca_eigval": eigval[order].clip(min=0).tolist(),
        "pca_eigvec": eigvec[:, order].tolist(),
        "images": len(chosen),
        "pixels": int(count),
        "dataset_files": len(files),
    }


def load_or_compute(files: list[str], cache: Path, fallback_dir: Path | None, max_images: int,
                    workers: int = 0) -> dict:
    """Stats from `cache` (or fallback_dir/STATS_FILE) when they match these files, else computed and cached.

    The cache is keyed like the bad-image scan's: the names, sizes and modification times of every file, so
    overwriting, adding or removing an image recomputes the statistics.

    The cache sits next to the data; when that folder is read-only it goes to `fallback_dir` (the run dir).
    """
    candidates = [cache] + ([fallback_dir / STATS_FILE] if fallback_dir else [])
    return cached_stats(candidates, file_signature(files), max_images,
                        lambda: compute_stats(files, max_images, workers=workers) | {"max_images": max_images})


def cached_stats(candidates: list[Path], signature: str, max_images: int, compute) -> dict:
    """The first of `candidates` holding statistics with this signature and image limit, else `compute()` written
    (atomically) to the first candidate that can be written."""
    for path in candidates:
        try:
            stats = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if stats.get("signature") == signature and stats.get("max_images") == max_images:
            return stats
    stats = compute() | {"signature": signature}
    for path in candidates:
        try:
            write_text_atomically(path, json.dumps(stats, indent=1))
            break
        except OSError:
            continue
    return stats
