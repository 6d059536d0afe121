"""`deepconv stats DATA_DIR`: mean RGB and PCA colour statistics of a training folder, computed once and cached."""

from pathlib import Path

from deepconv_cli.cli import run_function


def stats(data_dir: str, max_images: int = 10000) -> None:
    """Compute (or read from the cache) the training set's mean RGB and RGB-covariance eigenpairs.

    Args:
        data_dir: a dataset folder with train/ inside, or the train/ folder itself.
        max_images: images used, evenly spaced over the sorted file list (0 = all).
    """
    from rich.table import Table

    from deepconv_cli.data.folder import ImageTree, check_tree
    from deepconv_cli.data.stats import STATS_FILE, load_or_compute
    from deepconv_cli.tables import show

    root = Path(data_dir)
    train = root / "train" if (root / "train").is_dir() else root
    check_tree(train, "training")
    files = [path for path, _ in ImageTree(train).samples]
    result = load_or_compute(files, train / STATS_FILE, None, max_images)
    table = Table(title=f"{train}: {result['images']} images, {result['pixels']:,} pixels")
    for col in ("", "R", "G", "B"):
        table.add_column(col, justify="right")
    table.add_row("mean (0..255)", *(f"{v:.2f}" for v in result["mean"]))
    for i, (val, vec) in enumerate(zip(result["pca_eigval"], zip(*result["pca_eigvec"]))):
        table.add_row(f"PCA eigvec {i + 1} (eigval {val:.5f})", *(f"{v:+.4f}" for v in vec))
    show(table)
    print(f"cached in {train / STATS_FILE}")


def main(argv: list[str]) -> int:
    run_function(stats, argv, "deepconv stats")
    return 0
