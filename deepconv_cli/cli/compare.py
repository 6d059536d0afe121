"""`deepconv compare RUN_DIR ...`: one table of finished runs — network, parameters, best val error, training time."""

import csv
import json
from pathlib import Path

from deepconv_cli.cli.options import parse_options
from deepconv_cli.errors import usage
from deepconv_cli.files import write_text_atomically


def _history(run_dir: Path) -> tuple[float | None, float, int]:
    """(best val top-1 error, training seconds, epochs) from a run directory's metrics.csv."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        raise usage(f"{run_dir} has no metrics.csv: not a finished deepconv run directory")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    errors = [float(r["val/top1_error"]) for r in rows if r.get("val/top1_error")]
    seconds = sum(float(r["time/train_seconds"]) for r in rows if r.get("time/train_seconds"))
    epochs = sum(1 for r in rows if r.get("train/loss_epoch"))
    return (min(errors) if errors else None), seconds, epochs


def compare(runs: list[str], json_file: str | None = None) -> None:
    """Compare training runs on the same data: parameters, best validation top-1 error, training seconds.

    Args:
        runs: run directories (each with best.ckpt and metrics.csv, as `deepconv train` writes them).
        json_file: (--json) also write the rows to this JSON file.
    """
    from rich.table import Table

    from deepconv_cli.models.checkpoint import load_model
    from deepconv_cli.tables import show

    rows = []
    for run in runs:
        run_dir = Path(run)
        if not (run_dir / "best.ckpt").is_file():
            raise usage(f"{run_dir} has no best.ckpt: not a finished deepconv run directory")
        model, meta = load_model(run_dir / "best.ckpt")
        error, seconds, epochs = _history(run_dir)
        rows.append({"run": run_dir.name, "arch": meta.arch, "width": meta.width, "crop": meta.crop_size,
                     "parameters": model.inference_parameters(), "val_top1_error": error, "epochs": epochs,
                     "train_seconds": round(seconds, 1)})
    table = Table(title="Runs compared (same data, loader and validation)")
    for col in ("run", "network", "parameters", "val top-1 err (%)", "epochs", "training (s)"):
        table.add_column(col, justify="left" if col in ("run", "network") else "right")
    for r in rows:
        error = "-" if r["val_top1_error"] is None else f"{r['val_top1_error']:.2f}"
        table.add_row(r["run"], f"{r['arch']} x{r['width']:g}, {r['crop']}px", f"{r['parameters']:,}", error,
                      str(r["epochs"]), f"{r['train_seconds']:.1f}")
    show(table)
    if json_file:
        write_text_atomically(json_file, json.dumps(rows, indent=1) + "\n")


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs compare with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_options(compare, argv, "deepconv compare", {"--json": "--json_file"},
                         ("runs", "run directories (each with best.ckpt and metrics.csv)"))


def main(argv: list[str]) -> int:
    compare(**parse(argv))
    return 0
