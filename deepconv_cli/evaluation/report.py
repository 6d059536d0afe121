"""Evaluation results as the paper prints them (a rich table) and as files (JSON, CSV), written atomically."""

import csv
import io
import json

from rich.table import Table

COLUMNS = ("model", "arch", "train_s", "test_q", "method", "flip", "top1_error", "top5_error", "images", "seconds",
           "ckpt")
JSON_COLUMNS = COLUMNS + ("crop", "members", "preprocessing", "classes", "limit")  # what `deepconv report` matches on
HEADERS = {"model": "model", "arch": "config", "train_s": "train S", "test_q": "test Q", "method": "method",
           "top1_error": "top-1 err (%)", "top5_error": "top-5 err (%)", "images": "images", "seconds": "time (s)"}


def table(rows: list[dict], title: str) -> Table:
    """The rows as a rich table with the paper's columns (Tables 3-6): errors in percent, forward time."""
    out = Table(title=title)
    for key, header in HEADERS.items():
        out.add_column(header, justify="right" if key in ("top1_error", "top5_error", "images", "seconds") else "left")
    for r in rows:
        method = r["method"] + ("" if r["flip"] or r["method"] == "center" else " (no flip)")
        out.add_row(r["model"], r["arch"], r["train_s"], r["test_q"], method, f"{r['top1_error']:.2f}",
                    f"{r['top5_error']:.2f}", str(r["images"]), f"{r['seconds']:.1f}")
    return out


def to_json(rows: list[dict]) -> str:
    return json.dumps([{k: r[k] for k in JSON_COLUMNS if k in r} for r in rows], indent=1) + "\n"


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
