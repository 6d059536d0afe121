"""Measured results (the JSON files of `evaluate`, `localise evaluate`, `linear-svm`) set against the papers' rows.

Reads only JSON (no torch): `deepconv report` answers in well under a second.
"""

import json
from pathlib import Path

from deepconv_cli.evaluation.published import Paper, matches

# per table kind: (published key, measured key, column header)
VALUES = {
    "classification": (("top1_error", "top-1"), ("top5_error", "top-5")),
    "localisation": (("localisation_error", "loc. error"),),
    "descriptors": (("score", "score"),),
}


def _members(row: dict) -> list[dict]:
    """The fused networks of an evaluation row; older files (no `members`) have them joined by + and /."""
    if row.get("members"):
        return row["members"]
    archs, ss = row["arch"].split("+"), str(row["train_s"]).split("/")
    qs = str(row["test_q"]).split("/") if "/" in str(row["test_q"]) else [row["test_q"]] * len(archs)
    return [{"arch": a, "train_s": s, "test_q": q} for a, s, q in zip(archs, ss + ss[-1:] * len(archs), qs)]


def _from_file(path: Path) -> list[dict]:
    """Normalised results of one JSON file ([] when it is not one of the three kinds)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    out = []
    if isinstance(data, dict) and isinstance(data.get("results"), list) and "protocol" in data:
        for r in data["results"]:
            if isinstance(r, dict) and "loc_error" in r and "arch" in r:
                out.append({"kind": "localisation", "arch": r["arch"], "train_s": r["train_s"], "test_q": r["test_q"],
                            "method": r.get("protocol", data["protocol"]), "crop": r.get("crop", 224),
                            "members": r.get("members") or [], "regression": r.get("regression"),
                            "fine_tuned": r.get("fine_tuned"),
                            "localisation_error": r["loc_error"], "label": r.get("localiser", "")})
        return out
    if not isinstance(data, list):
        return []
    for r in data:
        if not isinstance(r, dict):
            continue
        if "top1_error" in r and "arch" in r:
            out.append({"kind": "classification", "arch": r["arch"], "train_s": str(r["train_s"]),
                        "test_q": str(r["test_q"]), "method": r["method"], "crop": r.get("crop", 224),
                        "members": _members(r), "preprocessing": r.get("preprocessing", "mean_rgb"),
                        "top1_error": r["top1_error"], "top5_error": r["top5_error"], "label": r.get("model", "")})
        elif "metric" in r and "mean" in r and r.get("networks"):
            nets = r["networks"]
            out.append({"kind": "descriptors", "arch": "+".join(n["arch"] for n in nets), "test_q": nets[0]["test_q"],
                        "crop": nets[0].get("crop", 224), "dataset": r.get("dataset"), "pooling": r.get("aggregate"),
                        "score": r["mean"], "std": r.get("std", 0.0), "label": r.get("features", "")})
    return out


def gather(root: Path) -> list[dict]:
    """Every result under `root`, newest file last (so a later run of the same row wins)."""
    files = sorted((p for p in root.rglob("*.json") if p.is_file()), key=lambda p: (p.stat().st_mtime, str(p)))
    results = []
    for path in files:
        for r in _from_file(path):
            r["file"] = str(path.relative_to(root))
            results.append(r)
    return results


def describe(row: dict) -> tuple[str, str, str, str]:
    """(network, S, Q, method) of a published row as the tables print them."""
    net = row.get("config", "")
    if row.get("members"):
        net = " + ".join(row["members"]) + ":"
    method = row.get("method") or row.get("pooling", "")
    if row.get("regression"):
        method += f" {row['regression']}" + (f" {row['fine_tuned']}" if row.get("fine_tuned") else "")
    if row.get("dataset"):
        net = f"{row['dataset']} {net}"
    return net, row.get("train_s", ""), row.get("test_q", ""), method


def compare(papers: list[Paper], results: list[dict]) -> list[dict]:
    """One entry per published row: its table, what it says, the matching measured values (None: not run)."""
    out = []
    for paper in papers:
        for row in paper.rows:
            kind = paper.tables[row["table"]]["kind"]
            hits = [r for r in results if r["kind"] == kind and matches(row, r)]
            hit = hits[-1] if hits else None
            entry = {"paper": paper.name, "table": row["table"], "title": paper.tables[row["table"]]["title"],
                     "kind": kind, "row": row, "measured": None, "file": hit["file"] if hit else None}
            if hit:
                entry["measured"] = {key: hit[key] for key, _ in VALUES[kind]}
                entry["crop"] = hit.get("crop") or 224
            out.append(entry)
    return out


def _ours(paper: float | None, ours: float | None) -> str:
    if ours is None:
        return "not run"
    return f"{ours:.1f}" + ("" if paper is None else f" ({ours - paper:+.1f})")


def cells(entry: dict) -> list[str]:
    """network (with S and Q), method, then per value: the paper's and ours (with the difference)."""
    net, s, q, method = describe(entry["row"])
    where = " ".join(part for part in (f"S={s}" if s and s != "*" else "", f"Q={q}" if q else "") if part)
    values = []
    for key, _ in VALUES[entry["kind"]]:
        paper = entry["row"].get(key)
        ours = entry["measured"][key] if entry["measured"] else None
        values += [f"{paper:.1f}" if paper is not None else "-", _ours(paper, ours)]
    return [f"{net} {where}".strip(), method, *values]


def headers(kind: str) -> list[str]:
    out = ["network", "method"]
    for _, name in VALUES[kind]:
        out += [name, "ours (diff)"]
    return out


def tables(entries: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """(title, kind, entries) per paper table, in the files' order."""
    grouped: dict[tuple[str, str], list[dict]] = {}
    for e in entries:
        grouped.setdefault((e["paper"], e["table"]), []).append(e)
    return [(group[0]["title"], group[0]["kind"], group) for group in grouped.values()]


def rich_tables(entries: list[dict]) -> list:
    from rich import box
    from rich.table import Table

    out = []
    for title, kind, group in tables(entries):
        what = {"classification": "error (%)", "localisation": "error (%)", "descriptors": "mean AP / recall (%)"}[kind]
        table = Table(title=f"{title}\npaper's {what} vs ours", title_justify="left", box=box.SIMPLE_HEAD,
                      pad_edge=False, padding=(0, 1), min_width=min(80, len(title)))
        for i, header in enumerate(headers(kind)):
            table.add_column(header, justify="right" if i >= 2 else "left", overflow="fold", min_width=14 if i == 0
                             else None, no_wrap=i in (1, 3, 5))
        for e in group:
            table.add_row(*cells(e))
        out.append(table)
    return out


def markdown(entries: list[dict]) -> str:
    parts = []
    for title, kind, group in tables(entries):
        head = headers(kind)
        lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(cells(e)) + " |" for e in group]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
