"""Start-up benchmark: seconds until deepconv answers `--help` (every command and sub-action) and a mistyped path.

Each figure is a fresh interpreter running `deepconv ...`, beside the time a fresh interpreter needs just to
import Lightning and torch (what a command that imported them first would pay at least). Target: <= 1 s for every
`--help` row and <= 2 s for the mistyped paths on an idle 2-core machine (issues 17 and 21: answers to trivial
mistakes and `--help` must be quick). The commands are cli/commands.py's, given by `deepconv benchmark startup`.
"""

import subprocess
import sys

from deepconv_cli.benchmarks.report import Comparison, median, median_seconds

MISSING = "no-such-file.ckpt"
# (row name, argv, expected exit code); `cases` adds every command's and sub-action's --help first
CASES = [
    ("train -c missing.yaml", ["train", "-c", "no-such-file.yaml"], 2),
    ("fine-tune --init_from missing", ["fine-tune", "--init_from", MISSING], 2),
    ("localise fit --init-from missing", ["localise", "fit", "--init-from", MISSING], 2),
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


def cases(commands: list[str]) -> list[tuple[str, list[str], int]]:
    """`deepconv --help`, then `NAME --help` for each of `commands` (e.g. "train", "localise fit"), then CASES."""
    helps = [(f"{name} --help", [*name.split(), "--help"], 0) for name in commands]
    return [("deepconv --help", ["--help"], 0), *helps, *CASES]


def benchmark_startup(runs: int, commands: list[str], only: list[str] | None = None) -> list[Comparison]:
    """One row per case (see `cases`) whose name starts with one of `only` (default: all)."""
    chosen = [c for c in cases(commands) if not only or any(c[0].startswith(o) for o in only)]
    eager = median(median_seconds(lambda: _run(None), runs, warmup=0))
    rows = []
    for name, argv, code in chosen:
        ours = median(median_seconds(lambda argv=argv, code=code: _run(argv, code), runs, warmup=0))
        rows.append(Comparison(
            name=name, unit="s", ours=ours, baseline=eager, ours_label="fresh interpreter",
            baseline_label="importing Lightning + torch alone", higher_is_better=False, runs=runs,
            target="<= 1 s" if name.endswith("--help") else "<= 2 s",
        ))
    return rows
