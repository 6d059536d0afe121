"""The result files `deepconv report` reads (evaluate, localise evaluate, linear-svm JSON), checked and normalised.

Each result becomes one flat dict: its kind, networks, scales, method, dataset and protocol (flips, image count,
--limit, AP variant, split, classifier...) and its values. A file that looks like a result but is not a sound
one (truncated JSON, a string where a number belongs, NaN) is skipped with one line naming the file and why.
"""

import json
import math
from pathlib import Path

from deepconv_cli.evaluation.published import LAPTOP


class BadResult(ValueError):
    """A result file that cannot be used; the message says why."""


def _number(r: dict, key: str, default=None):
    value = r.get(key, default)
    if value is None and default is None and key not in r:
        raise BadResult(f"no {key!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadResult(f"{key!r} is {json.dumps(value)[:40]}, not a number")
    if not math.isfinite(value):
        raise BadResult(f"{key!r} is {value}, not a finite number")
    return value


def _optional_number(r: dict, key: str):
    return None if r.get(key) is None else _number(r, key)


def _text(r: dict, key: str, default: str | None = None) -> str:
    value = r.get(key, default)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadResult(f"{key!r} is {json.dumps(value)[:40]}, not text")
    return str(value)


def _nets(items, crop: int) -> list[dict]:
    if not isinstance(items, list) or not all(isinstance(m, dict) for m in items):
        raise BadResult("'members' is not a list of networks")
    return [{"arch": _text(m, "arch"), "train_s": None if m.get("train_s") is None else _text(m, "train_s"),
             "test_q": _text(m, "test_q", ""), "crop": int(_number(m, "crop", crop))} for m in items]


def _members(r: dict, crop: int) -> list[dict]:
    """The fused networks of an evaluation row; older files (no `members`) have them joined by + and /."""
    if r.get("members"):
        return _nets(r["members"], crop)
    archs, ss = _text(r, "arch").split("+"), _text(r, "train_s").split("/")
    qs = _text(r, "test_q").split("/") if "/" in str(r["test_q"]) else [str(r["test_q"])] * len(archs)
    ss += ss[-1:] * len(archs)
    return [{"arch": a, "train_s": s, "test_q": q, "crop": crop} for a, s, q in zip(archs, ss, qs)]


def _dataset(r: dict, kind: str, crop: int) -> str:
    """ILSVRC for a 1000-class net (or an older file at crop >= 100), a laptop set for the built-in digits."""
    if r.get("dataset"):
        return _text(r, "dataset")
    classes = r.get("classes")
    if classes == 1000 or (classes is None and crop >= 100):
        return "ILSVRC-2012"
    if classes in (10, None):
        return LAPTOP[1] if kind == "localisation" else LAPTOP[0]
    return f"another set ({classes} classes)"


def _classification(r: dict) -> dict:
    crop = int(_number(r, "crop", 224))
    out = {"kind": "classification", "arch": _text(r, "arch"), "train_s": _text(r, "train_s"),
           "test_q": _text(r, "test_q"), "method": _text(r, "method"), "crop": crop, "members": _members(r, crop),
           "preprocessing": _text(r, "preprocessing", "mean_rgb"), "flip": r.get("flip"),
           "images": _optional_number(r, "images"), "limit": _optional_number(r, "limit") or 0,
           "top1_error": _number(r, "top1_error"), "top5_error": _number(r, "top5_error"),
           "label": _text(r, "model", "")}
    return {**out, "dataset": _dataset(r, "classification", crop)}


def _localisation(r: dict, data: dict) -> dict:
    crop = int(_number(r, "crop", 224))
    out = {"kind": "localisation", "arch": _text(r, "arch"), "train_s": _text(r, "train_s"),
           "test_q": _text(r, "test_q"), "method": _text(r, "protocol", data["protocol"]), "crop": crop,
           "members": _nets(r.get("members") or [], crop), "regression": r.get("regression"),
           "fine_tuned": r.get("fine_tuned"), "images": _optional_number(r, "images"),
           "limit": _optional_number(data, "limit") or 0, "offsets": _optional_number(data, "offsets"),
           "flip": data.get("flip"), "localisation_error": _number(r, "loc_error"), "label": _text(r, "localiser", "")}
    if r.get("classifiers"):
        archs, ss, qs = r["classifiers"], r.get("classifier_s") or [None] * len(r["classifiers"]), r.get("classifier_q")
        if not all(isinstance(v, list) and len(v) == len(archs) for v in (ss, qs or [])):
            raise BadResult("'classifiers', 'classifier_s' and 'classifier_q' differ in length")
        out["classifier_members"] = [{"arch": a, "train_s": s, "test_q": q} for a, s, q in zip(archs, ss, qs or archs)]
        out["classifier_method"] = r.get("classifier_method")
    return {**out, "dataset": _dataset(r, "localisation", crop)}


def _descriptors(r: dict) -> dict:
    nets = _nets(r["networks"], 224)
    out = {"kind": "descriptors", "arch": "+".join(n["arch"] for n in nets), "members": nets,
           "test_q": nets[0]["test_q"], "crop": nets[0]["crop"], "dataset": r.get("dataset"),
           "pooling": r.get("aggregate"), "metric": r.get("metric"), "ap": r.get("ap"), "split": r.get("split"),
           "task": r.get("task"), "setting": r.get("setting"), "score": _number(r, "mean"),
           "std": _number(r, "std", 0.0), "label": _text(r, "features", "")}
    for key in ("splits", "per_class", "test_per_class"):
        if key in r:
            out[key] = _number(r, key)
    return out


def from_file(path: Path) -> list[dict]:
    """The normalised results of one JSON file ([] when it holds none); BadResult when it is not sound."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BadResult("not UTF-8 text") from None
    except ValueError as e:
        raise BadResult(f"not valid JSON ({e})") from None
    except OSError as e:
        raise BadResult(f"cannot read it ({e.strerror or e})") from None
    out = []
    try:
        if isinstance(data, dict) and isinstance(data.get("results"), list) and "protocol" in data:
            out = [_localisation(r, data) for r in data["results"] if isinstance(r, dict) and "loc_error" in r]
        elif isinstance(data, list):
            for r in data:
                if isinstance(r, dict) and "top1_error" in r and "arch" in r:
                    out.append(_classification(r))
                elif isinstance(r, dict) and "metric" in r and "mean" in r and r.get("networks"):
                    out.append(_descriptors(r))
    except (KeyError, TypeError, AttributeError) as e:
        raise BadResult(f"a result without a sound {e} field") from None
    return out


def gather(root: Path) -> tuple[list[dict], list[tuple[str, str]]]:
    """Every result under `root`, newest file last (so a later run of the same row wins), and the files skipped
    with the reason."""
    files = sorted((p for p in root.rglob("*.json") if p.is_file()), key=lambda p: (p.stat().st_mtime, str(p)))
    results, skipped = [], []
    for path in files:
        name = str(path.relative_to(root))
        try:
            found = from_file(path)
        except BadResult as e:
            skipped.append((name, str(e)))
            continue
        for r in found:
            r["file"] = name
            results.append(r)
    return results, skipped
