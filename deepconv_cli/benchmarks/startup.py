"""Start-up benchmark: `deepconv --help` in a fresh interpreter vs one that imports Lightning up front."""

import subprocess
import sys

from deepconv_cli.benchmarks.report import Comparison, median, median_seconds


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)


def benchmark_startup(runs: int) -> list[Comparison]:
    help_call = "import sys; from deepconv_cli.__main__ import main; sys.argv = ['deepconv', '--help']; main()"
    ours = median_seconds(lambda: _run(help_call), runs, warmup=0)
    eager = median_seconds(lambda: _run("import lightning, torch; " + help_call), runs, warmup=0)
    return [
        Comparison(
            name="start-up", unit="s", ours=median(ours), baseline=median(eager),
            ours_label="deepconv --help", baseline_label="same, importing Lightning first",
            higher_is_better=False, runs=runs, target="<= 1.5 s",
        )
    ]
