"""`deepconv linear-svm`: linear SVMs on descriptor files (VGG paper, Appendix B), one table row per file."""

import json
from pathlib import Path
from typing import Literal

from deepconv_cli.cli.options import parse_options
from deepconv_cli.errors import usage
from deepconv_cli.features import C_GRID

ALIASES = {"--json": "--json_file"}
C_GRID_TEXT = ",".join(f"{c:g}" for c in C_GRID)


def parse_c_grid(text: str) -> list[float]:
    try:
        grid = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        grid = []
    if not grid or min(grid) <= 0:
        raise usage(f"--c_grid takes comma-separated positive numbers like 0.1,1,10, got {text!r}")
    return grid


def linear_svm(
    features: list[str] | None = None,
    splits: int = 0,
    per_class: int = 30,
    test_per_class: int = 0,
    train: list[str] | None = None,
    test: list[str] | None = None,
    labels: str | None = None,
    c_grid: str = C_GRID_TEXT,
    folds: int = 5,
    seed: int = 0,
    json_file: str | None = None,
    dataset: str | None = None,
    ap: Literal["voc2007", "voc2010", "sklearn"] = "voc2007",
) -> list[dict]:
    """Linear SVMs (scikit-learn LinearSVC, one-vs-rest) on `deepconv features` files, C chosen by
    cross-validation on each training split.

    Caltech protocol: --features FILE --splits N --per_class K (N random splits, K training images per class,
    the rest for testing): mean class recall, mean +- std over the splits. Fixed split: --train FILE --test FILE:
    mean class recall, or with --labels CSV (image -> several labels, the VOC case) mean average precision.
    Repeat --features (or --train/--test pairs) to compare descriptors in one table, e.g. a network's against
    raw pixels (`deepconv features --raw_pixels 8`); files of the same folder get identical random splits.

    Args:
        features: a descriptor file to evaluate by random splits; repeat for more rows.
        splits: number of random splits (Caltech: 3 or more).
        per_class: training images per class in each random split.
        test_per_class: at most this many test images per class (0: all the rest; Caltech-101 uses 50).
        train: training descriptor file of a fixed split; repeat together with --test for more rows.
        test: test descriptor file of a fixed split.
        labels: CSV of image -> labels (`image,label label ...`): multi-label data, scored by mean AP.
        c_grid: the SVM's C values tried by cross-validation, comma-separated.
        folds: cross-validation folds on the training split for choosing C.
        seed: seed of the random splits and folds.
        json_file: (--json) also write the rows as JSON (mean, std and per-split scores in percent).
        dataset: the dataset's name recorded in the JSON (VOC-2007, VOC-2012, Caltech-101, Caltech-256; digit-boxes
            for Table 12's laptop form), which `deepconv report` matches against the VGG paper's Tables 11 and 12.
        ap: mean AP as the VOC devkit computes it: voc2007 (11-point interpolated) or voc2010 (area under the
            monotone precision envelope, VOC-2010 and later), or sklearn (non-interpolated); labels marked
            `cat:difficult` in the CSV are left out of that class's AP (and count as positives in training).
    """
    grid = parse_c_grid(c_grid)
    features, train, test = features or [], train or [], test or []
    if len(train) != len(test):
        raise usage(f"give --train and --test in pairs (got {len(train)} --train and {len(test)} --test)")
    if not features and not train:
        raise usage("give --features FILE --splits N --per_class K, or --train FILE --test FILE")
    if features and splits < 1:
        raise usage("--features needs --splits N (random splits); for a fixed split use --train/--test")
    if labels and features:
        raise usage("--labels (multi-label, mean AP) works with --train/--test, not random --splits")
    if folds < 2:
        raise usage(f"--folds must be at least 2, got {folds}")
    from deepconv_cli.features.labels import read_label_csv
    from deepconv_cli.features.protocol import fixed_split, random_splits
    from deepconv_cli.features.store import read_features
    from deepconv_cli.files import write_text_atomically

    table = read_label_csv(labels) if labels else None
    results = []
    caltech = {"splits": splits, "per_class": per_class, "test_per_class": test_per_class}
    for name in features:
        feats = read_features(name)
        results.append((random_splits(name, feats, splits, per_class, test_per_class, grid, folds, seed), feats,
                        caltech))
    for tr, te in zip(train, test):
        feats, test_feats = read_features(tr), read_features(te)
        split = {"split": Path(str(test_feats.settings.get("data", ""))).name}  # the test images' folder: val, test
        results.append((fixed_split(tr, feats, te, test_feats, table, grid, folds, seed, ap), feats, split))
    rows = [{**r.to_dict(), **made_by(feats.settings, dataset, ap if table else None), **how}
            for r, feats, how in results]
    show(rows)
    if json_file:
        write_text_atomically(json_file, json.dumps(rows, indent=1) + "\n")
    return rows


def made_by(settings: dict, dataset: str | None, ap: str | None) -> dict:
    """What `deepconv report` matches a row on: the networks (arch, crop, scales), the scale pooling, the dataset,
    the task (action: one row per person of a boxes file, Table 12) and its setting (image, box or image+box)."""
    nets = [{"arch": n["arch"], "crop": n.get("crop_size", 224), "test_q": ",".join(map(str, n["scales"])),
             "train_s": n.get("train_s")} for n in settings.get("networks") or []]
    task = {"task": "action" if settings.get("boxes") else "classification", "setting": settings.get("region", "image")}
    return {"dataset": dataset, "networks": nets, "aggregate": settings.get("aggregate"), "ap": ap, **task}


def show(rows: list[dict]) -> None:
    from rich.table import Table

    from deepconv_cli.tables import show as show_table

    table = Table(title="Linear SVM on image descriptors (VGG paper, Appendix B)")
    for col, justify in (("features", "left"), ("descriptor", "left"), ("dim", "right"), ("protocol", "left"),
                         ("train / test", "right"), ("metric", "left"), ("result (%)", "right"), ("C", "left")):
        table.add_column(col, justify=justify)
    best = max(r["mean"] for r in rows)
    for r in rows:
        value = f"{r['mean']:.2f} ± {r['std']:.2f}" if len(r["per_split"]) > 1 else f"{r['mean']:.2f}"
        style = "bold" if r["mean"] == best and len(rows) > 1 else None
        cs = ",".join(f"{c:g}" for c in r["C"])
        name = " -> ".join(Path(part).name for part in r["features"].split(" -> "))
        table.add_row(name, r["descriptor"], str(r["dim"]), r["protocol"],
                      f"{r['train_images']} / {r['test_images']}", r["metric"], value, cs, style=style)
    show_table(table)


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_options(linear_svm, argv, "deepconv linear-svm", ALIASES)


def main(argv: list[str]) -> int:
    linear_svm(**parse(argv))
    return 0
