"""Measured results (see results.py) set against the papers' rows: like with like only.

A result fills a published row when network, S, Q, method, members, dataset and protocol all agree
(published.differences is empty). A laptop-scale result (digits, digit-boxes) fills a separate table beside
the paper's setting it mirrors, with no difference column. A result whose network, dataset and task match a row
but whose protocol does not (fewer images, no flips, another AP...) is listed as not comparable, with the
reasons of the nearest row. Reads only JSON (no torch): `deepconv report` answers in well under a second.
"""

import math

from deepconv_cli.evaluation.published import Paper, differences, in_paper_units, laptop, same_subject

# per table kind: (published key, column header); the measured value has the same key
VALUES = {
    "classification": (("top1_error", "top-1"), ("top5_error", "top-5")),
    "localisation": (("localisation_error", "loc. error"),),
    "descriptors": (("score", "score"),),
}
WHAT = {"classification": "error (%)", "localisation": "error (%)", "descriptors": "mean AP / recall (%)"}
MACHINERY = "laptop scale: these check the machinery, not the paper's claims"


def describe(row: dict) -> tuple[str, str, str, str]:
    """(network, S, Q, method) of a published row as the tables print them."""
    net = row.get("config", "")
    if row.get("members"):
        counts = {m: row["members"].count(m) for m in row["members"]}
        net = " + ".join(f"{n} x {m}" if n > 1 else m for m, n in counts.items())
    method = row.get("method") or row.get("pooling") or row.get("setting", "")
    if row.get("regression"):
        method += f" {row['regression']}" + (f" {row['fine_tuned']}" if row.get("fine_tuned") else "")
    if row.get("setting") and row.get("pooling"):
        method = f"{row['setting']} {method}"
    if "metric" in row and row.get("dataset"):  # descriptor tables span datasets
        net = f"{row['dataset']} {net}"
    if row.get("note") and row.get("extra_data"):
        net += f" ({row['note']})"
    return net, row.get("train_s", ""), row.get("test_q", ""), method


def describe_result(r: dict) -> str:
    """A measured result in one phrase: network, S, Q (with the paper's pixels where the crop differs), method."""
    crop = r.get("crop") or 224
    scales = " ".join(f"{k}={r[key]}" for k, key in (("S", "train_s"), ("Q", "test_q")) if r.get(key))
    scaled = f" at crop {crop}" if crop not in (224, 227) else ""
    what = r.get("method") or r.get("setting") or r.get("pooling") or ""
    return f"{r.get('dataset')} {r.get('arch')} {scales}{scaled} {what}".replace("  ", " ").strip()


def _entry(paper: Paper, row: dict, kind: str, hit: dict | None) -> dict:
    entry = {"paper": paper.name, "table": row["table"], "title": paper.tables[row["table"]]["title"],
             "kind": kind, "row": row, "measured": None, "file": None}
    if hit:
        paper_crop, crop = row.get("crop", 224), hit.get("crop") or 224
        entry.update(measured={key: hit[key] for key, _ in VALUES[kind]}, file=hit["file"], crop=crop, result=hit,
                     in_paper_units={k: in_paper_units(hit[k], crop, paper_crop) for k in ("train_s", "test_q")
                                     if hit.get(k) and "/" not in str(hit[k])})
    return entry


def compare(papers: list[Paper], results: list[dict]) -> dict:
    """{"rows": one entry per published row (measured None: not run), "laptop": the laptop-scale results beside the
    rows they mirror, "not_comparable": results whose protocol differs from every row of their network, with the
    reasons, "unmatched": how many results name no published setting}."""
    rows, small, done = [], [], set()
    for paper in papers:
        for row in paper.rows:
            kind = paper.tables[row["table"]]["kind"]
            hits = [r for r in results if r["kind"] == kind and same_subject(row, r) and not differences(row, r)]
            done |= {id(r) for r in hits}
            real = [r for r in hits if not laptop(r)]
            rows.append(_entry(paper, row, kind, real[-1] if real else None))
            newest = {r["dataset"]: r for r in hits if laptop(r)}
            small += [{**_entry(paper, row, kind, r), "dataset": name} for name, r in newest.items()]
    not_comparable, unmatched = [], 0
    for r in results:
        if id(r) in done:
            continue
        near = [(differences(row, r), paper, row) for paper in papers for row in paper.rows
                if paper.tables[row["table"]]["kind"] == r["kind"] and same_subject(row, r)]
        if not near:
            unmatched += 1
            continue
        # the nearest row: the same method first, then the fewest differences
        reasons, paper, row = min(near, key=lambda n: (n[2].get("method", r.get("method")) != r.get("method"),
                                                       len(n[0])))
        net, s, q, method = describe(row)
        where = " ".join(p for p in (f"S={s}" if s and s != "*" else "", f"Q={q}" if q else "") if p)
        not_comparable.append({"file": r["file"], "result": describe_result(r), "values": {
            key: r[key] for key, _ in VALUES[r["kind"]]}, "paper": paper.name, "table": row["table"],
            "row": f"{paper.tables[row['table']]['title'].split(':')[0]}: {net} {where} {method}".replace("  ", " "),
            "reasons": reasons, "measured": r})
    return {"rows": rows, "laptop": small, "not_comparable": not_comparable, "unmatched": unmatched}


def _ours(paper: float | None, ours: float | None, diff: bool) -> str:
    if ours is None:
        return "not run"
    return f"{ours:.1f}" + ("" if paper is None or not diff else f" ({ours - paper:+.1f})")


def cells(entry: dict, diff: bool = True) -> list[str]:
    """network (with S and Q), method, then per value: the paper's and ours (with the difference when `diff`)."""
    net, s, q, method = describe(entry["row"])
    where = " ".join(part for part in (f"S={s}" if s and s != "*" else "", f"Q={q}" if q else "") if part)
    values = []
    for key, _ in VALUES[entry["kind"]]:
        paper = entry["row"].get(key)
        ours = entry["measured"][key] if entry["measured"] else None
        values += [f"{paper:.1f}" if paper is not None else "-", _ours(paper, ours, diff)]
    return [f"{net} {where}".strip(), method, *values]


def headers(kind: str, diff: bool = True) -> list[str]:
    out = ["network", "method"]
    for _, name in VALUES[kind]:
        out += [name, "ours (diff)" if diff else "ours"]
    return out


def tables(entries: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """(title, kind, entries) per paper table (per table and laptop dataset for laptop entries), in order."""
    grouped: dict[tuple, list[dict]] = {}
    for e in entries:
        grouped.setdefault((e["paper"], e["table"], e.get("dataset")), []).append(e)
    out = []
    for (_, _, dataset), group in grouped.items():
        title = group[0]["title"] + (f"\non {dataset} ({MACHINERY})" if dataset else "")
        out.append((title, group[0]["kind"], group))
    return out


def rich_tables(report: dict) -> list:
    from rich import box
    from rich.table import Table

    out = []
    for part, diff in (("rows", True), ("laptop", False)):
        for title, kind, group in tables(report[part]):
            table = Table(title=f"{title}\npaper's {WHAT[kind]} vs ours", title_justify="left", box=box.SIMPLE_HEAD,
                          pad_edge=False, padding=(0, 1), min_width=min(80, len(title.split(chr(10))[0])))
            for i, header in enumerate(headers(kind, diff)):
                table.add_column(header, justify="right" if i >= 2 else "left", overflow="fold",
                                 min_width=14 if i == 0 else None, no_wrap=i in (1, 3, 5))
            for e in group:
                table.add_row(*cells(e, diff))
            out.append(table)
    if report["not_comparable"]:
        table = Table(title="Not comparable with the paper's row (a protocol differs)", title_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
        for header in ("result (file)", "nearest published row", "why not"):
            table.add_column(header, overflow="fold")
        for n in report["not_comparable"]:
            table.add_row(f"{n['result']} ({n['file']})", n["row"], "; ".join(n["reasons"]))
        out.append(table)
    return out


def markdown(report: dict) -> str:
    parts = []
    for part, diff in (("rows", True), ("laptop", False)):
        for title, kind, group in tables(report[part]):
            head = headers(kind, diff)
            lines = [f"### {title.replace(chr(10), ' ')}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(cells(e, diff)) + " |" for e in group]
            parts.append("\n".join(lines))
    if report["not_comparable"]:
        lines = ["### Not comparable with the paper's row (a protocol differs)", ""]
        lines += [f"- {n['result']} (`{n['file']}`), nearest {n['row']}: {'; '.join(n['reasons'])}"
                  for n in report["not_comparable"]]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def finite(value):
    """`value` with every NaN or infinity replaced by None, so json.dumps(allow_nan=False) writes valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
