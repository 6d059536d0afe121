"""Time-to-data benchmark: the bad-image scan and the mean RGB / PCA statistics a new training folder costs before
its first step, per image in one process and with worker processes, and what that projects to for ImageNet.

The target (issue 10) is <= 60 s per 100,000 new files on 16 cores. The projection assumes the per-process rate
scales with the cores (decoding is embarrassingly parallel; disk and memory bandwidth can make it scale worse):
seconds = 100,000 / (scan rate x cores) + min(100,000, stats_max_images) / (statistics rate x cores).
"""

from pathlib import Path

from deepconv_cli.benchmarks.loader import make_jpegs
from deepconv_cli.benchmarks.report import Comparison, median, median_seconds
from deepconv_cli.data.scan import scan_images
from deepconv_cli.data.stats import compute_stats

NEW_FILES, STATS_IMAGES = 100_000, 10_000  # an ImageNet-sized slice of new files; the statistics' default sample


def projected_seconds(scan_rate: float, stats_rate: float, cores: int) -> float:
    """Seconds for the scan of NEW_FILES files and the statistics of STATS_IMAGES of them on `cores` cores."""
    return NEW_FILES / (scan_rate * cores) + min(NEW_FILES, STATS_IMAGES) / (stats_rate * cores)


def benchmark_prepare(root: Path, images: int, workers: int, runs: int, cores: int) -> list[Comparison]:
    """Images/s of the scan and of the statistics with `workers` processes beside one process, on `images`
    synthetic 500x375 JPEGs under `root` (made once)."""
    files = sorted(str(p) for p in (make_jpegs(root, images) / "c0").glob("*.jpg"))[:images]
    rows = []
    rates = {}
    for name, run in (("bad-image scan", lambda w: scan_images(files, [], workers=w, progress=False)),
                      ("mean RGB + PCA statistics", lambda w: compute_stats(files, 0, progress=False, workers=w,
                                                                            parallel_min=0))):
        one = len(files) / median(median_seconds(lambda: run(0), runs))
        many = len(files) / median(median_seconds(lambda: run(workers), runs))
        rates[name] = one
        rows.append(Comparison(name, "img/s", many, one, f"{workers} worker processes", "one process", True, runs))
    seconds = projected_seconds(rates["bad-image scan"], rates["mean RGB + PCA statistics"], cores)
    for row in rows:
        row.target = "<= 60 s per 100,000 new files on 16 cores"
        row.extra = {"projected_seconds_100k_files": round(seconds, 1), "projected_cores": cores,
                     "images": len(files)}
    return rows


def packed_vs_folder_first_step(root: Path, images: int, workers: int) -> Comparison:
    """Seconds before the first step of a run on `images` new files (first run, nothing cached): the folder path's
    bad-image scan + statistics with `workers` processes against opening a pack (`deepconv data pack`, timed
    once, apart) and computing its statistics, both with `workers` processes. One run each: a second run reads both
    caches."""
    import time

    from deepconv_cli.data.packed import PackedSplit, packed_stats, read_meta
    from deepconv_cli.data.packing import pack

    files = sorted(str(p) for p in (make_jpegs(root, images) / "c0").glob("*.jpg"))[:images]
    tree = root / "tree"
    for split, chosen in (("train", files), ("val", files[: max(1, len(files) // 10)])):
        (tree / split / "c0").mkdir(parents=True, exist_ok=True)
        for path in chosen:
            link = tree / split / "c0" / Path(path).name
            if not link.exists():
                link.symlink_to(Path(path).resolve())
    start = time.perf_counter()
    scan_images(files, [], workers=workers, progress=False)
    compute_stats(files, STATS_IMAGES, progress=False, workers=workers, parallel_min=0)
    folder_seconds = time.perf_counter() - start
    packed_dir = root / f"packed-{images}"
    start = time.perf_counter()
    if not packed_dir.is_dir():
        pack(tree, str(packed_dir), workers=workers)
    pack_seconds = time.perf_counter() - start
    start = time.perf_counter()
    packed_stats(PackedSplit(packed_dir, "train", read_meta(packed_dir)), STATS_IMAGES, workers, progress=False,
                 parallel_min=0)
    packed_seconds = time.perf_counter() - start
    return Comparison("time to the first step (first run)", "s", packed_seconds, folder_seconds,
                      f"pack opened + statistics ({workers} processes)",
                      f"folder scan + statistics ({workers} processes)",
                      False, 1, extra={"images": len(files), "pack_seconds_once": round(pack_seconds, 1),
                                       "cached": "both read a JSON cache next to the data on later runs"})
