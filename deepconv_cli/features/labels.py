"""Multi-label annotations (VOC style) as a CSV of image -> labels: `image,labels` rows, the labels separated by
spaces, semicolons or `|`; the image is the path relative to the folder `deepconv features` read, or its name."""

import csv
from pathlib import Path

import numpy as np

from deepconv_cli.errors import usage
from deepconv_cli.files import existing_file

SEPARATORS = (";", "|")
DIFFICULT = ":difficult"  # `cat:difficult`: the image shows a cat marked difficult (VOC), left out of cat's AP


def read_label_csv(path: str | Path) -> dict[str, list[str]]:
    """{image: [label, ...]} from the CSV; a header row starting with `image` is skipped."""
    path = existing_file(path, "labels CSV")
    table: dict[str, list[str]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.reader(f), 1):
                if not row or not row[0].strip() or (n == 1 and row[0].strip().lower() in ("image", "path", "file")):
                    continue
                text = " ".join(row[1:])
                for sep in SEPARATORS:
                    text = text.replace(sep, " ")
                table[row[0].strip()] = sorted(set(text.split()))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise usage(f"cannot read labels CSV {path}: {e}") from None
    if not table:
        raise usage(f"labels CSV {path} has no rows (expected `image,label label ...`)")
    return table


def label_matrix(paths: list[str], table: dict[str, list[str]], classes: list[str], what: str) -> np.ndarray:
    """(N, K): 1 where image `paths[i]` (looked up by relative path, then by file name) has label k, -1 where it
    has it only as difficult, 0 elsewhere."""
    by_name = {Path(k).name: v for k, v in table.items()}
    index = {c: k for k, c in enumerate(classes)}
    y = np.zeros((len(paths), len(classes)), dtype=np.int64)
    missing = []
    for i, p in enumerate(paths):
        labels = table.get(p, by_name.get(Path(p).name))
        if labels is None:
            missing.append(p)
            continue
        for label in labels:
            hard = label.endswith(DIFFICULT)
            k = index[label.removesuffix(DIFFICULT)]
            y[i, k] = max(y[i, k], 1) if not hard else (y[i, k] or -1)
    if missing:
        raise usage(f"{len(missing)} images of {what} have no row in the labels CSV, e.g. {', '.join(missing[:3])}")
    return y


def label_names(table: dict[str, list[str]]) -> list[str]:
    return sorted({label.removesuffix(DIFFICULT) for labels in table.values() for label in labels})
