"""Re-run the chains whose results README.md and docs/ quote, and check every quoted figure against the output.

    python tools/check_readme_figures.py                       # all three chains in a fresh temporary folder
    python tools/check_readme_figures.py --chains localise --workdir /tmp/figs --tolerance 2

Each chain is `deepconv recipe run recipes/<chain>.yaml` run in WORKDIR (a finished chain there is not re-run:
`recipe run` skips finished stages, so a second check reads the same results). Figures are error rates in percent
as written in the docs; a figure passes when the measured value is within --tolerance percentage points (default
0.005: the printed digits, what a re-run on the same machine and versions gives; another CPU's floating-point
kernels round differently and seeded training can land a few images away, so use e.g. --tolerance 2 there).

The list below is the single record of what the docs quote: each marked block in README.md or docs/*.md
(`<!-- figures:NAME -->` ... `<!-- /figures -->`) must hold exactly these percentages (a fast test checks it), so
a figure cannot change in the docs without this check knowing. Took 11 minutes on 2 shared CPU cores; not part of
the default pytest run. Needs only the deepconv command (run as `python -m deepconv_cli`).
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAINS = {"quickstart": "quickstart.yaml", "compare": "compare_digits.yaml", "localise": "quickstart_localise.yaml"}
RUN_ROOTS = {"quickstart": "runs/quickstart", "compare": "runs/compare_digits", "localise": "runs/quickstart_localise"}
PERCENT = re.compile(r"(?<![\d.])(\d+\.\d+) ?%")
BEST = "val/top1_error"  # the column that picks a training stage's best.ckpt
BLOCK = re.compile(r"<!-- figures:(\w+) -->(.*?)<!-- /figures -->", re.S)


@dataclass(frozen=True)
class Figure:
    chain: str
    doc: str  # the file quoting it, relative to the repository
    block: str  # the marked block it sits in
    quoted: str  # as written, e.g. "3.06 %"
    source: str  # where the chain writes it: "<stage>/<file>.json", or "metrics:<stage>" (its best epoch's row)
    select: tuple = ()  # (key, value) pairs choosing the JSON row
    key: str = ""


Q, C, L = "quickstart", "compare", "localise"
FIGURES = [
    Figure(Q, "README.md", Q, "3.06 %", "metrics:vgg_d"),
    Figure(Q, "README.md", Q, "0.84 %", "metrics:vgg_d", (), "val/top5_error"),
    Figure(Q, "README.md", Q, "7.80 %", "evaluate_d/results.json", (("method", "dense"),), "top1_error"),
    Figure(Q, "README.md", Q, "0.00 %", "evaluate_d/results.json", (("method", "dense"),), "top5_error"),
    Figure(Q, "README.md", Q, "3.34 %", "evaluate_d/results.json", (("method", "multi-crop"),), "top1_error"),
    Figure(Q, "README.md", Q, "0.00 %", "evaluate_d/results.json", (("method", "multi-crop"),), "top5_error"),
    Figure(Q, "README.md", Q, "3.62 %", "evaluate_d/results.json", (("method", "dense+multi-crop"),), "top1_error"),
    Figure(Q, "README.md", Q, "0.00 %", "evaluate_d/results.json", (("method", "dense+multi-crop"),), "top5_error"),
    Figure(Q, "README.md", Q, "2.51 %", "metrics:vgg_a"),
    Figure(C, "README.md", C, "3.06 %", "table/compare.json", (("run", "lenet5"),), "val_top1_error"),
    Figure(C, "README.md", C, "6.41 %", "table/compare.json", (("run", "nin"),), "val_top1_error"),
    Figure(C, "README.md", C, "1.95 %", "table/compare.json", (("run", "alexnet"),), "val_top1_error"),
    Figure(C, "README.md", C, "0.56 %", "table/compare.json", (("run", "vgg_a"),), "val_top1_error"),
    Figure(C, "README.md", C, "0.56 %", "table/compare.json", (("run", "vgg_a_bn"),), "val_top1_error"),
    Figure(L, "README.md", L, "56.82 %", "centre_gt/results.json", (("localiser", "scr_fc/best"),), "loc_error"),
    Figure(L, "README.md", L, "66.02 %", "centre_gt/results.json", (("localiser", "pcr_fc/best"),), "loc_error"),
    Figure(L, "README.md", L, "32.31 %", "centre_gt/results.json", (("localiser", "pcr/best"),), "loc_error"),
    Figure(L, "README.md", L, "49.03 %", "dense_top5/results.json", (("localiser", "pcr/best"),), "loc_error"),
    Figure(L, "README.md", L, "70.47 %", "dense_top5/results.json", (("localiser", "pcr_fc/best"),), "loc_error"),
    Figure(L, "README.md", L, "53.20 %", "dense_top5/results.json", (("localiser", "fusion"),), "loc_error"),
    Figure(L, "README.md", L, "100.00 %", "centre_gt/results.json", (("localiser", "pcr/best"),), "baseline_error"),
    Figure(L, "README.md", L, "100.00 %", "dense_top5/results.json", (("localiser", "pcr/best"),), "baseline_error"),
    Figure(L, "README.md", L, "5.01 %", "metrics:vgg_a"),
    Figure(L, "README.md", L, "79.11 %", "metrics:classifier"),
    Figure(L, "README.md", L, "33.43 %", "dense_top5/results.json", (("localiser", "pcr/best"),),
           "classification_error"),
]


def quoted_blocks(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(doc, block) -> the percentages written in that marked block, in order."""
    found = {}
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for name, body in BLOCK.findall(doc.read_text()):
            found[(str(doc.relative_to(root)), name)] = [f"{v} %" for v in PERCENT.findall(body)]
    return found


def deepconv(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-m", "deepconv_cli", *args], cwd=cwd, env=env, check=True)


def measured(figure: Figure, run_root: Path) -> float:
    if figure.source.startswith("metrics:"):  # a training stage's metrics.csv, at its best validation epoch
        with open(run_root / figure.source.split(":", 1)[1] / "metrics.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get(BEST)]
        return float(min(rows, key=lambda r: float(r[BEST]))[figure.key or BEST])
    data = json.loads((run_root / figure.source).read_text())
    rows = data.get("results", data) if isinstance(data, dict) else data
    for row in rows:
        if all(str(row.get(k)) == v for k, v in figure.select):
            return float(row[figure.key])
    raise LookupError(f"{figure.source}: no row with {dict(figure.select)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", default=",".join(CHAINS), help="comma-separated: " + ", ".join(CHAINS))
    parser.add_argument("--workdir", help="folder to run the chains in (default: a fresh temporary folder)")
    parser.add_argument("--tolerance", type=float, default=0.005, help="allowed difference, percentage points")
    args = parser.parse_args(argv)
    chains = [c for c in args.chains.split(",") if c]
    unknown = set(chains) - set(CHAINS)
    if unknown:
        parser.error(f"unknown chain(s) {', '.join(sorted(unknown))}; choose from {', '.join(CHAINS)}")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="deepconv-figures-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for chain in chains:
        deepconv("recipe", "run", str(ROOT / "recipes" / CHAINS[chain]), cwd=workdir)
        for figure in (f for f in FIGURES if f.chain == chain):
            value = measured(figure, workdir / RUN_ROOTS[chain])
            quoted = float(figure.quoted.rstrip(" %"))
            ok = abs(value - quoted) <= args.tolerance
            failed += not ok
            what = f"{figure.source} {dict(figure.select) or ''} {figure.key}".strip()
            print(f"{'ok  ' if ok else 'FAIL'} {figure.doc} [{figure.block}] {figure.quoted:>9} measured {value:6.2f} %"
                  f"  ({what})")
    print(f"{failed} figure(s) differ by more than {args.tolerance} points; chains run in {workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
