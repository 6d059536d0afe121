"""`deepconv report RUN_ROOT`: the papers' tables, published numbers against the results measured under RUN_ROOT."""

import json
import sys
from pathlib import Path

from deepconv_cli.cli.options import parse_options
from deepconv_cli.errors import failure, usage

ALIASES = {"--json": "--json_out=true"}


def report(run_root: str, json_out: bool = False, markdown: bool = False, measured_only: bool = False,
           strict: bool = False) -> dict:
    """Each table of the VGG paper (3-12), AlexNet's Tables 1-2 and torchvision's VGG-16 figure: the published
    number, the one measured under RUN_ROOT and their difference, like with like only; rows not yet run say so.

    Reads the JSON files that `deepconv evaluate --json`, `deepconv localise evaluate --json` and
    `deepconv linear-svm --json --dataset NAME` write anywhere under RUN_ROOT. A result fills a row only when
    dataset, network, training S, test Q (in the paper's pixels: a net trained on 32-pixel crops at S = 36 counts
    as S = 256; AlexNet's at crop 227), method, fused members and protocol (flips, the full image set, AP
    variant, split, the classifier of Table 9) all agree; the newest file wins where two match. Laptop-scale runs
    (digits, digit-boxes) fill their own tables beside the setting they mirror, with no difference; a result
    whose protocol differs is listed as not comparable, with the reason. A result file that cannot be read
    (truncated, a wrong type, NaN) is named and skipped with one line on stderr.

    Example: deepconv report runs/paper --markdown > tables.md

    Args:
        run_root: the folder holding the runs (searched recursively for *.json).
        json_out: (--json) print the comparison as JSON instead of tables (every field a match was made on).
        markdown: print Markdown tables instead of rich tables.
        measured_only: leave out the tables with no measured row.
        strict: exit 1 when a result file was skipped.
    """
    root = Path(run_root)
    if not root.is_dir():
        raise usage(f"run root not found: {root}")
    from deepconv_cli.evaluation.paper_report import compare, finite, rich_tables
    from deepconv_cli.evaluation.paper_report import markdown as to_markdown
    from deepconv_cli.evaluation.published import load_all
    from deepconv_cli.evaluation.results import gather

    results, skipped = gather(root)
    for name, why in skipped:
        print(f"deepconv report: skipped {root / name}: {why}", file=sys.stderr)
    out = compare(load_all(), results)
    if measured_only:
        tables = {(e["paper"], e["table"]) for e in out["rows"] if e["measured"]}
        out["rows"] = [e for e in out["rows"] if (e["paper"], e["table"]) in tables]
    out["skipped"] = [{"file": name, "reason": why} for name, why in skipped]
    matched = sum(e["measured"] is not None for e in out["rows"])
    if json_out:
        print(json.dumps(finite(out), indent=1, allow_nan=False))
    elif markdown:
        print(to_markdown(out))
    else:
        from deepconv_cli.tables import show

        for table in rich_tables(out):
            show(table)
    if not json_out:
        print(f"{len(results)} measured results under {root}; {matched} of {len(out['rows'])} published rows "
              f"matched; {len(out['laptop'])} laptop-scale rows; {len(out['not_comparable'])} not comparable; "
              f"{out['unmatched']} with no published setting")
    if strict and skipped:
        raise failure(f"{len(skipped)} result file(s) skipped (--strict)")
    return out


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_options(report, argv, "deepconv report", ALIASES, ("run_root", "the folder holding the runs"))


def main(argv: list[str]) -> int:
    report(**parse(argv))
    return 0
