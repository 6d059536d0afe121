"""Start-up benchmark: seconds until deepconv answers `--help` (every subcommand) and a mistyped path.

Each figure is a fresh interpreter running `deepconv ...`, beside the time a fresh interpreter needs just to
import Lightning and torch (what a command that imported them first would pay at least). Target: <= 2 s on an
idle 2-core machine for every row (issue 17: answers to trivial mistakes and `--help` must be quick).
"""

import subprocess
import sys

from deepconv_cli.__main__ import COMMANDS
from deepconv_cli.benchmarks.report import Comparison, median, median_seconds

MISSING = "no-such-file.ckpt"
# (row name, argv, expected exit code)
CASES = [
    ("deepconv --help", ["--help"], 0),
    *[(f"{name} --help", [*name.split(), "--help"], 0)
      for name in (("benchmark startup" if command == "benchmark" else command) for command in COMMANDS)],
    ("train -c missing.yaml", ["train", "-c", "no-such-file.yaml"], 2),
    ("fine-tune --init_from missing", ["fine-tune", "--init_from", MISSING], 2),
    ("evaluate --ckpt missing", ["evaluate", "--ckpt", MISSING, "--data", "."], 2),
    ("predict --ckpt missing", ["predict", "--ckpt", MISSING, "."], 2),
    ("export --ckpt missing", ["export", "--ckpt", MISSING], 2),
    ("import missing weights", ["import", "no-such-file.pth", "--out", "x.ckpt"], 2),
]


def _run(argv: list[str] | None, code: int = 0) -> None:
    command = [sys.executable, "-m", "deepconv_cli", *argv] if argv is not None else \
        [sys.executable, "-c", "import lightning, torch"]
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if done.returncode != code:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}, expected {code}")


def benchmark_startup(runs: int, only: list[str] | None = None) -> list[Comparison]:
    """One row per case whose name starts with one of `only` (default: all)."""
    cases = [c for c in CASES if not only or any(c[0].startswith(o) for o in only)]
    eager = median(median_seconds(lambda: _run(None), runs, warmup=0))
    rows = []
    for name, argv, code in cases:
        ours = median(median_seconds(lambda argv=argv, code=code: _run(argv, code), runs, warmup=0))
        rows.append(Comparison(
            name=name, unit="s", ours=ours, baseline=eager, ours_label="fresh interpreter",
            baseline_label="importing Lightning + torch alone", higher_is_better=False, runs=runs, target="<= 2 s",
        ))
    return rows
