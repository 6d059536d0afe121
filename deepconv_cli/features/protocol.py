"""The two evaluation protocols of Appendix B on descriptor files: Caltech-style random splits (mean class recall,
mean +- std over splits) and a fixed train/test split (mean class recall, or mean AP for multi-label data)."""

from dataclasses import dataclass

import numpy as np

from deepconv_cli.errors import usage
from deepconv_cli.features.labels import label_matrix, label_names
from deepconv_cli.features.store import Features, describe
from deepconv_cli.features.svm import (
    C_GRID,
    fit_multi_label,
    fit_single_label,
    mean_average_precision,
    mean_class_recall,
    random_split,
)

RECALL, MAP = "mean class recall", "mean AP"


@dataclass
class SvmResult:
    """One table row: a descriptor file (or train/test pair) under one protocol; scores are fractions."""

    features: str
    descriptor: str
    dim: int
    protocol: str
    metric: str
    scores: list[float]
    c_values: list[float]
    train_images: int
    test_images: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Sample standard deviation over the splits (0 for one split)."""
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else 0.0

    def to_dict(self) -> dict:
        return {"features": self.features, "descriptor": self.descriptor, "dim": self.dim, "protocol": self.protocol,
                "metric": self.metric, "mean": round(100 * self.mean, 3), "std": round(100 * self.std, 3),
                "per_split": [round(100 * s, 3) for s in self.scores], "C": self.c_values,
                "train_images": self.train_images, "test_images": self.test_images}


def single_labels(feats: Features, name: str) -> np.ndarray:
    labels = feats.labels.numpy()
    if (labels < 0).any() or not feats.classes:
        raise usage(f"{name} has no class labels (made from a flat folder): give --labels CSV with --train/--test")
    return labels


def random_splits(name: str, feats: Features, splits: int, per_class: int, test_per_class: int = 0,
                  c_grid=C_GRID, folds: int = 5, seed: int = 0) -> SvmResult:
    """`splits` random splits of `per_class` training images per class; the same seeds give the same splits for
    every file made from the same folder, so rows of one table are compared on identical splits."""
    if splits < 1 or per_class < 2:
        raise usage(f"--splits must be at least 1 and --per_class at least 2, got {splits} and {per_class}")
    y = single_labels(feats, name)
    counts = np.bincount(y, minlength=len(feats.classes))
    short = [f"{feats.classes[c]} ({n})" for c, n in enumerate(counts) if 0 < n <= per_class]
    if short:
        raise usage(f"--per_class {per_class} leaves no test image in classes {', '.join(short[:5])} of {name}")
    x = feats.descriptors.numpy()
    scores, cs, n_train, n_test = [], [], 0, 0
    for k in range(splits):
        train, test = random_split(y, per_class, test_per_class, np.random.default_rng(seed + k))
        model, c = fit_single_label(x[train], y[train], c_grid, folds, seed + k)
        scores.append(mean_class_recall(model, x[test], y[test]))
        cs.append(c)
        n_train, n_test = len(train), len(test)
    protocol = f"{splits} splits x {per_class}/class" + (f", test <= {test_per_class}/class" if test_per_class else "")
    return SvmResult(name, describe(feats), feats.dim, protocol, RECALL, scores, cs, n_train, n_test)


def fixed_split(train_name: str, train: Features, test_name: str, test: Features,
                table: dict[str, list[str]] | None = None, c_grid=C_GRID, folds: int = 5, seed: int = 0,
                ap: str = "voc2007") -> SvmResult:
    """Train on one file, test on the other: mean AP when a labels table is given (multi-label), else mean class
    recall with the class folders' names matched between the two files."""
    if train.dim != test.dim:
        raise usage(f"{train_name} has {train.dim}-value descriptors but {test_name} has {test.dim}: made differently")
    regions = [f.settings.get("region", "image") for f in (train, test)]
    if regions[0] != regions[1]:
        raise usage(f"{train_name} describes region {regions[0]} but {test_name} region {regions[1]}: made differently")
    name = f"{train_name} -> {test_name}"
    xtr, xte = train.descriptors.numpy(), test.descriptors.numpy()
    if table is not None:
        classes = label_names(table)
        ytr = label_matrix(train.paths, table, classes, train_name)
        yte = label_matrix(test.paths, table, classes, test_name)
        model, c = fit_multi_label(xtr, (ytr != 0).astype(np.int64), c_grid, folds, seed)  # difficult: a positive
        score, metric = mean_average_precision(model, xte, yte, ap), MAP
    else:
        ytr = single_labels(train, train_name)
        unknown = sorted(set(test.classes) - set(train.classes))
        if unknown:
            raise usage(f"{test_name} has classes the training file lacks: {', '.join(unknown[:5])}")
        to_train = np.array([train.classes.index(c) for c in test.classes])
        yte = to_train[single_labels(test, test_name)]
        model, c = fit_single_label(xtr, ytr, c_grid, folds, seed)
        score, metric = mean_class_recall(model, xte, yte), RECALL
    return SvmResult(name, describe(train), train.dim, "fixed train/test", metric, [score], [c], len(xtr), len(xte))
