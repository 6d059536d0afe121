"""The papers' published numbers (package data, one JSON file per paper) and how a measured result finds its row.

Each file holds `tables` (id -> title, kind) and `rows`: the table, the network (`config`, or `members` for a
fusion, each "CONFIG/S/Q"), training scale S ("256" or "256-512"), test scales Q, evaluation method and the
published errors in percent (or score = mean AP / mean class recall). Scales are compared in the paper's units:
a measured S or Q is multiplied by 224 / crop, so a net trained on 32-pixel crops at S = 36 matches S = 256.
"""

import json
from dataclasses import dataclass
from importlib import resources

PAPERS = ("vgg", "alexnet", "torchvision")


@dataclass
class Paper:
    name: str
    title: str
    tables: dict[str, dict]
    rows: list[dict]


def load(name: str) -> Paper:
    data = json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text())
    return Paper(name, data["paper"], data["tables"], data["rows"])


def load_all() -> list[Paper]:
    return [load(name) for name in PAPERS]


def _scales(text: str) -> list[int]:
    return [int(v) for v in str(text).replace("-", ",").split(",") if v.strip()]


def same_scales(published: str, measured: str, crop: int) -> bool:
    """Published S or Q ("256,384,512", "256-512", "*") against measured ones taken at `crop` (1-pixel slack)."""
    if published == "*":
        return True
    if ("-" in published) != ("-" in str(measured)):
        return False
    p, m = _scales(published), _scales(measured)
    slack = 224 / crop
    return len(p) == len(m) and all(abs(a - b * 224 / crop) <= slack for a, b in zip(p, m))


def same_members(published: list[str], measured: list[dict], crop: int) -> bool:
    """A fusion's members (order free) against measured ones ({arch, train_s, test_q})."""
    if len(published) != len(measured):
        return False
    left = list(measured)
    for key in published:
        config, s, q = key.split("/")
        hit = next((m for m in left if m["arch"] == config and same_scales(s, m["train_s"], crop)
                    and same_scales(q, m["test_q"], crop)), None)
        if hit is None:
            return False
        left.remove(hit)
    return True


def matches(row: dict, result: dict) -> bool:
    """Whether a measured result (a normalised evaluation row, see report.results) is this published row."""
    crop = result.get("crop") or 224
    if row.get("method") and row["method"] != result.get("method"):
        return False
    if row.get("dataset") and row["dataset"] != result.get("dataset"):
        return False
    for key in ("regression", "pooling", "preprocessing", "fine_tuned"):
        if row.get(key) and result.get(key) and str(row[key]).lower() != str(result[key]).lower():
            return False
    if row.get("preprocessing") and row["preprocessing"] != result.get("preprocessing"):
        return False
    if "members" in row:
        return len(result.get("members") or []) > 1 and same_members(row["members"], result["members"], crop)
    if len(result.get("members") or [None]) > 1 or row["config"] != result.get("arch"):
        return False
    if "train_s" in row and not same_scales(row["train_s"], result.get("train_s", ""), crop):
        return False
    return "test_q" not in row or same_scales(row["test_q"], result.get("test_q", ""), crop)
