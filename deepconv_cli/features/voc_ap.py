"""Average precision as the PASCAL VOC devkit computes it (VOCevalcls.m): 11-point interpolated AP for VOC-2007,
the area under the monotone precision envelope for VOC-2010 and later; "difficult" images are left out."""

import numpy as np

METHODS = ("voc2007", "voc2010")
# the recall thresholds of VOCevalcls.m's `for t=0:0.1:1`: MATLAB's colon builds the first half as k*0.1 and the
# second as 1-(10-k)*0.1, so its 0.3 is 0.30000000000000004 but its 0.6 and 0.7 are the doubles nearest 0.6 and 0.7
# (np.linspace gives 0.6000000000000001 and 0.7000000000000001: a recall landing on 0.6 or 0.7 would lose its point)
THRESHOLDS = tuple([k * 0.1 for k in range(6)] + [1 - (10 - k) * 0.1 for k in range(6, 11)])


def voc_average_precision(scores: np.ndarray, gt: np.ndarray, method: str = "voc2007") -> float:
    """AP of one class: `gt` is 1 (positive), -1 (negative) or 0 (difficult: neither a hit nor a miss)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    gt = np.asarray(gt)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")  # ties in input order, as MATLAB's sort
    tp, fp = np.cumsum(gt[order] > 0), np.cumsum(gt[order] < 0)
    positives = int((gt > 0).sum())
    if positives == 0:
        raise ValueError("no positive image: AP is undefined")
    rec = tp / positives
    prec = tp / np.maximum(tp + fp, 1)
    if method == "voc2007":
        return float(sum(prec[rec >= t].max(initial=0.0) for t in THRESHOLDS) / 11)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the monotone envelope, from the right
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def voc_mean_ap(scores: np.ndarray, gt: np.ndarray, method: str = "voc2007") -> float:
    """Mean over the classes (columns) that have a positive image."""
    present = [k for k in range(gt.shape[1]) if (gt[:, k] > 0).any()]
    if not present:
        raise ValueError("no image carries any label: mean AP is undefined")
    return float(np.mean([voc_average_precision(scores[:, k], gt[:, k], method) for k in present]))
