"""Linear SVMs on descriptors (VGG paper, Appendix B): scikit-learn's LinearSVC one-vs-rest, C chosen by
cross-validation on the training split; scored by mean class recall (single-label) or mean average precision."""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import average_precision_score, balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from deepconv_cli.errors import usage
from deepconv_cli.features import C_GRID
from deepconv_cli.features.voc_ap import voc_mean_ap

MAX_ITER = 20000


def _search(estimator, grid: dict, scoring: str, cv, x: np.ndarray, y: np.ndarray):
    search = GridSearchCV(estimator, grid, scoring=scoring, cv=cv, n_jobs=1, refit=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a C at the grid's edge may not converge; CV judges it
        warnings.simplefilter("ignore", UserWarning)  # a CV fold without positives of some label
        search.fit(x, y)
    return search


def fit_single_label(x: np.ndarray, y: np.ndarray, c_grid=C_GRID, folds: int = 5, seed: int = 0):
    """One-vs-rest LinearSVC with the C of best mean class recall over stratified folds of (x, y); (model, C)."""
    counts = np.bincount(y)
    smallest = int(counts[counts > 0].min()) if len(y) else 0
    if smallest < 2:
        raise usage("every class needs at least 2 training images to choose C by cross-validation")
    cv = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
    svm = LinearSVC(multi_class="ovr", dual=False, max_iter=MAX_ITER, random_state=seed)
    search = _search(svm, {"C": list(c_grid)}, "balanced_accuracy", cv, x, y)
    return search.best_estimator_, float(search.best_params_["C"])


def mean_class_recall(model, x: np.ndarray, y: np.ndarray) -> float:
    """The mean over classes of the fraction of each class's images classified correctly (Caltech protocol)."""
    return float(balanced_accuracy_score(y, model.predict(x)))


def fit_multi_label(x: np.ndarray, y: np.ndarray, c_grid=C_GRID, folds: int = 5, seed: int = 0):
    """One LinearSVC per label (y: N x K 0/1), C of best mean AP over folds of the training split; (model, C)."""
    cv = KFold(n_splits=max(2, min(folds, len(x))), shuffle=True, random_state=seed)
    svm = OneVsRestClassifier(LinearSVC(dual=False, max_iter=MAX_ITER, random_state=seed))
    search = _search(svm, {"estimator__C": list(c_grid)}, "average_precision", cv, x, y)
    return search.best_estimator_, float(search.best_params_["estimator__C"])


def mean_average_precision(model, x: np.ndarray, y: np.ndarray, ap: str = "voc2007") -> float:
    """The mean over labels (those with a positive test image) of the average precision of the SVM scores: the VOC
    devkit's (voc2007: 11-point interpolated; voc2010: area under the precision envelope) or scikit-learn's
    non-interpolated one (sklearn). y: 1 positive, 0 negative, -1 difficult (left out of that label's AP)."""
    scores = model.decision_function(x)
    present = [k for k in range(y.shape[1]) if (y[:, k] > 0).any()]
    if not present:
        raise usage("no test image carries any label: mean AP is undefined")
    if ap == "sklearn":
        return float(np.mean([average_precision_score(y[y[:, k] >= 0, k], scores[y[:, k] >= 0, k]) for k in present]))
    gt = np.where(y > 0, 1, np.where(y < 0, 0, -1))  # the devkit's coding: 1 positive, -1 negative, 0 difficult
    return voc_mean_ap(scores, gt, ap)


def random_split(
    labels: np.ndarray, per_class: int, test_per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Caltech-style split: `per_class` random training images of every class, the rest (at most
    `test_per_class` of each class when > 0) for testing. Indices, sorted."""
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        train.append(members[:per_class])
        rest = members[per_class:]
        test.append(rest[:test_per_class] if test_per_class > 0 else rest)
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
