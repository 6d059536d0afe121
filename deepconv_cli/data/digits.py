"""The built-in dataset: the 1,797 UCI optical-recognition handwritten digits, written as an ImageFolder tree.

The data (`digits.csv.gz`, 8x8 images with 17 grey levels, last column the label) is the copy scikit-learn
ships: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning Repository,
1998, licensed CC BY 4.0. Writing it as train/<class>/*.png and val/<class>/*.png makes the quickstart take
exactly the path an ImageNet folder takes.
"""

import gzip
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

VAL_EVERY = 5  # a fixed split: every 5th image (by position in the file) is validation -> 1,438 train, 359 val


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Images (1797, 8, 8) uint8 in 0..255 and labels (1797,) in 0..9."""
    with resources.files("deepconv_cli.data").joinpath("digits.csv.gz").open("rb") as f, gzip.open(f) as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    images = (table[:, :64].reshape(-1, 8, 8) * 255 // 16).astype(np.uint8)
    return images, table[:, 64]


def write_digits(out: str | Path) -> dict[str, int]:
    """Write OUT/train and OUT/val as PNGs named by their row in the file; returns the image count per split."""
    out = Path(out)
    images, labels = load_digits()
    counts = {"train": 0, "val": 0}
    for i, (image, label) in enumerate(zip(images, labels)):
        split = "val" if i % VAL_EVERY == VAL_EVERY - 1 else "train"
        folder = out / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{i:04d}.png")
        counts[split] += 1
    return counts


def is_complete(out: str | Path) -> bool:
    """Whether OUT holds the whole tree `write_digits` writes (same files per split)."""
    out = Path(out)
    return all(
        len(list((out / split).glob("*/*.png"))) == count for split, count in (("train", 1438), ("val", 359))
    )
