"""The papers' published numbers (package data, one JSON file per paper) and how a measured result finds its row.

Each file holds `tables` (id -> title, kind, and `defaults`: the protocol every row of the table shares) and
`rows`: the network (`config`, or `members` for a fusion, each "CONFIG/S/Q"), training scale S ("256" or
"256-512"), test scales Q, evaluation method, the protocol (dataset, split, image count, flips, AP variant, ...)
and the published errors in percent (or score = mean AP / mean class recall). Scales are compared in the paper's
units: a measured S or Q is multiplied by the paper's crop / the run's crop (224 for VGG, 227 for AlexNet), so a
net trained on 32-pixel crops at S = 36 mirrors S = 256.

A result is *in* a row when every check passes (`differences` is empty); when only its network, dataset and task
agree (`same_subject`), the differences say why it is not comparable. Laptop-scale datasets (digits, digit-boxes)
never enter a paper's row: they are matched, dataset and image count aside, to the setting they mirror.
"""

import json
from dataclasses import dataclass
from importlib import resources

PAPERS = ("vgg", "alexnet", "torchvision")
LAPTOP = ("digits", "digit-boxes")  # the built-in sets: they check the machinery, not the papers' claims


@dataclass
class Paper:
    name: str
    title: str
    tables: dict[str, dict]
    rows: list[dict]  # each with its table's defaults filled in


def load(name: str) -> Paper:
    data = json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text())
    rows = [{**data["tables"][r["table"]].get("defaults", {}), **r} for r in data["rows"]]
    return Paper(name, data["paper"], data["tables"], rows)


def load_all() -> list[Paper]:
    return [load(name) for name in PAPERS]


def _scales(text: str) -> list[int]:
    return [int(round(float(v))) for v in str(text).replace("-", ",").split(",") if v.strip()]


def in_paper_units(measured: str, crop: int, paper_crop: int = 224) -> str:
    """A measured S or Q ("36-73", "36,54,73") in the paper's pixels ("252-511", "252,378,511")."""
    sep = "-" if "-" in str(measured) else ","
    return sep.join(str(round(v * paper_crop / crop)) for v in _scales(measured))


def same_scales(published: str, measured: str, crop: int, paper_crop: int = 224) -> bool:
    """Published S or Q ("256,384,512", "256-512", "*") against measured ones taken at `crop` (1-pixel slack)."""
    if published == "*":
        return True
    if measured is None or ("-" in str(published)) != ("-" in str(measured)):
        return False
    p, m = _scales(published), _scales(measured)
    factor = paper_crop / crop
    return len(p) == len(m) and all(abs(a - b * factor) <= factor for a, b in zip(p, m))


def same_members(published: list[str], measured: list[dict], crop: int, paper_crop: int = 224) -> bool:
    """A fusion's members (order free) against measured ones ({arch, train_s, test_q})."""
    if len(published) != len(measured):
        return False
    left = list(measured)
    for key in published:
        config, s, q = key.split("/")
        hit = next((m for m in left if m["arch"] == config and same_scales(s, m.get("train_s"), crop, paper_crop)
                    and same_scales(q, m.get("test_q"), crop, paper_crop)), None)
        if hit is None:
            return False
        left.remove(hit)
    return True


def _archs(row: dict) -> list[str]:
    return sorted(m.split("/")[0] for m in row["members"]) if row.get("members") else sorted(row["config"].split("+"))


def laptop(result: dict) -> bool:
    return result.get("dataset") in LAPTOP


def same_subject(row: dict, result: dict) -> bool:
    """Same networks, dataset (any laptop set for a laptop result) and task: the row the result is meant for."""
    if sorted(str(result.get("arch", "")).split("+")) != _archs(row):
        return False
    if not laptop(result) and row.get("dataset") != result.get("dataset"):
        return False
    return all((row.get(k) or d) == (result.get(k) or d) for k, d in (("task", "classification"), ("setting", "image")))


def _text(value) -> str:
    return "not recorded" if value is None or value == "" else str(value)


def _scale_difference(name: str, published: str, measured, crop: int, paper_crop: int) -> list[str]:
    if same_scales(published, measured, crop, paper_crop):
        return []
    shown = _text(measured) if measured is None or crop == paper_crop else \
        f"{measured} ({in_paper_units(measured, crop, paper_crop)} in the paper's pixels)"
    return [f"{name} {shown}, the paper's {published}"]


def _network_differences(row: dict, result: dict) -> list[str]:
    crop, paper_crop = result.get("crop") or 224, row.get("crop", 224)
    members = result.get("members") or []
    if row.get("members"):
        if len(members) < 2 or not same_members(row["members"], members, crop, paper_crop):
            got = ", ".join(f"{m.get('arch')}/{m.get('train_s')}/{m.get('test_q')}" for m in members) or "one network"
            return [f"members {got}, the paper's {', '.join(row['members'])}"]
        return []
    if result.get("kind") == "descriptors":  # each descriptor net's training S, and the test scales they share
        out = []
        for m in members or [{"train_s": None}]:
            out += _scale_difference(f"{m.get('arch', '')} trained at S", row.get("train_s", "*"), m.get("train_s"),
                                     m.get("crop") or crop, paper_crop)
        return out + _scale_difference("Q", row.get("test_q", "*"), result.get("test_q"), crop, paper_crop)
    if len(members) > 1:
        return ["a fusion of several networks, the paper's one"]
    return (_scale_difference("S", row.get("train_s", "*"), result.get("train_s"), crop, paper_crop)
            + _scale_difference("Q", row.get("test_q", "*"), result.get("test_q"), crop, paper_crop))


def _protocol_differences(row: dict, result: dict) -> list[str]:
    small = laptop(result)
    out = []
    for key in ("method", "regression", "fine_tuned", "pooling", "metric", "preprocessing"):
        if key in row and str(row[key]).lower() != str(result.get(key)).lower():
            out.append(f"{key.replace('_', ' ')} {_text(result.get(key))}, the paper's {row[key]}")
    if "flip" in row and result.get("method") != "center" and result.get("flip") is not None \
            and bool(result["flip"]) != row["flip"]:
        out.append("no flipped views" if row["flip"] else "flipped views added")
    if result.get("limit"):
        out.append(f"{result.get('images')} images (--limit {result['limit']})")
    elif not small and "images" in row and result.get("images") is not None and result["images"] != row["images"]:
        out.append(f"{result['images']} images, the paper's {row['images']:,}")
    if "offsets" in row and (result.get("offsets") or 1) != row["offsets"]:
        out.append(f"{result.get('offsets')} dense offsets, the paper's {row['offsets']}")
    if "ap" in row and result.get("ap") != row["ap"]:
        out.append(f"AP {_text(result.get('ap'))}, the paper's {row['ap']} (the VOC devkit's)")
    recorded = result.get("split") is not None or result.get("kind") == "descriptors"  # evaluate: always val
    if "split" in row and not small and recorded and result.get("split") != row["split"]:
        out.append(f"{row.get('dataset')} {_text(result.get('split'))}, the paper's {row['split']}")
    for key in ("splits", "per_class", "test_per_class"):
        if key in row and result.get(key) != row[key]:
            out.append(f"{key.replace('_', ' ')} {_text(result.get(key))}, the paper's {row[key]}")
    if "classifier" in row:  # Table 9-10: which classification system ranked the top 5
        crop = result.get("crop") or 224
        got = result.get("classifier_members") or []
        if not same_members(row["classifier"], got, crop, row.get("crop", 224)) or \
                result.get("classifier_method") != row.get("classifier_method"):
            shown = ", ".join(f"{m['arch']}/{m['train_s']}/{m['test_q']}" for m in got) or "not recorded"
            out.append(f"top-5 ranked by {shown} ({_text(result.get('classifier_method'))}), the paper's "
                       f"{', '.join(row['classifier'])} ({row.get('classifier_method')})")
    if row.get("extra_data"):
        out.append(f"the paper's row used extra training data: {row['extra_data']}")
    return out


def differences(row: dict, result: dict) -> list[str]:
    """Why `result` is not this published row (empty: it is); call only where `same_subject` holds."""
    return _network_differences(row, result) + _protocol_differences(row, result)


def matches(row: dict, result: dict) -> bool:
    """Whether a measured result (a normalised row, see evaluation/results.py) is this published row."""
    return same_subject(row, result) and not differences(row, result)
