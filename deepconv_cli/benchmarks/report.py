"""Timing helpers and the shape of a benchmark result: a comparison, its rich table row and its JSON entry."""

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.table import Table

from deepconv_cli.files import write_text_atomically
from deepconv_cli.tables import show


@dataclass
class Comparison:
    """deepconv's figure beside a baseline's, both medians of `runs` timed runs made in the same process.

    `speedup` is how many times better deepconv is: baseline / ours for times, ours / baseline for rates.
    `mfu`: deepconv's model FLOP utilisation (0..1) where it applies and the GPU's peak is known, else None.
    """

    name: str
    unit: str
    ours: float
    baseline: float
    ours_label: str
    baseline_label: str
    higher_is_better: bool
    runs: int
    target: str = ""
    extra: dict = field(default_factory=dict)
    mfu: float | None = None

    @property
    def speedup(self) -> float:
        if self.higher_is_better:
            return self.ours / self.baseline
        return self.baseline / self.ours

    def to_dict(self) -> dict:
        return asdict(self) | {"speedup": self.speedup}


def median_seconds(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    """Wall times of `runs` calls of fn after `warmup` untimed ones (CUDA work included: synchronised)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }


def print_table(title: str, comparisons: list[Comparison]) -> None:
    table = Table(title=title)
    for col in ("comparison", "deepconv", "", "baseline", "", "unit", "speedup", "target"):
        table.add_column(col, justify="right" if col in ("deepconv", "baseline", "speedup") else "left")
    for c in comparisons:
        table.add_row(
            c.name, f"{c.ours:,.4g}", c.ours_label, f"{c.baseline:,.4g}", c.baseline_label, c.unit,
            f"{c.speedup:.2f}x", c.target,
        )
    show(table)
    for c in comparisons:
        for key, value in c.extra.items():
            print(f"  {c.name}: {key} = {value}")


def write_json(path: str | Path, benchmark: str, comparisons: list[Comparison], settings: dict) -> None:
    """The results as JSON, written atomically."""
    payload = {
        "benchmark": benchmark,
        "machine": machine(),
        "settings": settings,
        "comparisons": {c.name: c.to_dict() for c in comparisons},
    }
    write_text_atomically(path, json.dumps(payload, indent=1))
