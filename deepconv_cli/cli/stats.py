"""`deepconv stats DATA_DIR`: mean RGB and PCA colour statistics of a training folder, computed once and cached."""

from pathlib import Path

from deepconv_cli.cli import run_function


def stats(data_dir: str, max_images: int = 10000) -> None:
    """Compute (or read from the cache) the training set's mean RGB and RGB-covariance eigenpairs.

    Args:
        data_dir: a dataset folder with train/ inside, the train/ folder itself, or a packed dataset (data pack).
        max_images: images used, evenly spaced over the sorted file list (0 = all).
    """
    from rich.table import Table

    from deepconv_cli.data import packed
    from deepconv_cli.data.folder import ImageTree, check_tree
    from deepconv_cli.data.stats import STATS_FILE, load_or_compute
    from deepconv_cli.files import is_url
    from deepconv_cli.tables import show

    root = Path(data_dir)
    train = root / "train" if (root / "train").is_dir() else root
    if packed.is_packed(data_dir):
        split = packed.PackedSplit(data_dir, "train", packed.read_meta(data_dir))
        result = packed.load_or_compute_stats(split, None, max_images)
        train = Path(split.url) / "deepconv-stats.json" if not is_url(data_dir) else None
    else:
        check_tree(train, "training")
        files = [path for path, _ in ImageTree(train).samples]
        result = load_or_compute(files, train / STATS_FILE, None, max_images)
        train = train / STATS_FILE
    table = Table(title=f"{data_dir}: {result['images']} images, {result['pixels']:,} pixels")
    for col in ("", "R", "G", "B"):
        table.add_column(col, justify="right")
    table.add_row("mean (0..255)", *(f"{v:.2f}" for v in result["mean"]))
    for i, (val, vec) in enumerate(zip(result["pca_eigval"], zip(*result["pca_eigvec"]))):
        table.add_row(f"PCA eigvec {i + 1} (eigval {val:.5f})", *(f"{v:+.4f}" for v in vec))
    show(table)
    print(f"cached in {train}" if train else "not cached (a remote pack: train caches them in its run directory)")


def main(argv: list[str]) -> int:
    run_function(stats, argv, "deepconv stats")
    return 0
