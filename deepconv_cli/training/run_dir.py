"""The files of a run directory that outlive a process: the finished state and the metrics history (the lock and the
decisions made from these files are training/lifecycle.py's).

- `finished_state` / `mark_finished`: RUN_DIR/.finished.json records how a completed run ended (epochs, and
  whether the learning-rate drops or max_epochs stopped it), so re-running the command says "already finished"
  and touches nothing, a larger --trainer.max_epochs extends it and a smaller one is a one-line error.
- `keep_history`: metrics.csv rows logged up to the resumed checkpoint's step survive the resume (Lightning's
  CSVLogger would delete the file), so metrics.csv and curves.png hold every epoch.
"""

import csv
import io
import json
from pathlib import Path

from deepconv_cli.files import write_text_atomically

FINISHED = ".finished.json"
METRICS = "metrics.csv"


def finished_state(run_dir: Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / FINISHED).read_text())
    except (OSError, ValueError):
        return None


def mark_finished(run_dir: Path, epochs: int, reason: str) -> None:
    write_text_atomically(Path(run_dir) / FINISHED, json.dumps({"epochs": epochs, "reason": reason}) + "\n")


def clear_finished(run_dir: Path) -> None:
    (Path(run_dir) / FINISHED).unlink(missing_ok=True)


def read_history(run_dir: Path, before_step: int) -> tuple[list[str], list[dict]] | None:
    """metrics.csv's header and the rows logged before `before_step` (what the resumed checkpoint had seen)."""
    path = Path(run_dir) / METRICS
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (OSError, csv.Error, UnicodeDecodeError):
        return None

    def step(row: dict) -> float:
        try:
            return float(row.get("step") or 0)
        except ValueError:
            return float("inf")

    return header, [r for r in rows if step(r) < before_step]


def write_history(run_dir: Path, header: list[str], rows: list[dict]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(Path(run_dir) / METRICS, out.getvalue())
