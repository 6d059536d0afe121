"""`deepconv report RUN_ROOT`: the papers' tables, published numbers against the results measured under RUN_ROOT."""

import json
from pathlib import Path

from deepconv_cli.cli.options import parse_options
from deepconv_cli.errors import usage

ALIASES = {"--json": "--json_out=true"}


def report(run_root: str, json_out: bool = False, markdown: bool = False, measured_only: bool = False) -> list[dict]:
    """Each table of the VGG paper (3-6, 8, 9, 11), AlexNet's Table 2 and torchvision's VGG-16 figure: the
    published number, the one measured under RUN_ROOT and their difference; rows not yet run say so.

    Reads the JSON files that `deepconv evaluate --json`, `deepconv localise evaluate --json` and
    `deepconv linear-svm --json --dataset NAME` write anywhere under RUN_ROOT, and matches each row by network,
    training scale S, test scales Q (in the paper's pixels: a net trained on 32-pixel crops at S = 36 counts as
    S = 256), method and fused members. The newest file wins where two match.

    Example: deepconv report runs/paper --markdown > tables.md

    Args:
        run_root: the folder holding the runs (searched recursively for *.json).
        json_out: (--json) print the comparison as JSON instead of tables.
        markdown: print Markdown tables instead of rich tables.
        measured_only: leave out the tables with no measured row.
    """
    root = Path(run_root)
    if not root.is_dir():
        raise usage(f"run root not found: {root}")
    from deepconv_cli.evaluation.paper_report import compare, gather, rich_tables
    from deepconv_cli.evaluation.paper_report import markdown as to_markdown
    from deepconv_cli.evaluation.published import load_all

    results = gather(root)
    entries = compare(load_all(), results)
    if measured_only:
        tables = {(e["paper"], e["table"]) for e in entries if e["measured"]}
        entries = [e for e in entries if (e["paper"], e["table"]) in tables]
    matched = sum(e["measured"] is not None for e in entries)
    if json_out:
        print(json.dumps(entries, indent=1))
        return entries
    if markdown:
        print(to_markdown(entries))
    else:
        from deepconv_cli.tables import show

        for table in rich_tables(entries):
            show(table)
    print(f"{len(results)} measured results under {root}; {matched} of {len(entries)} published rows matched")
    small = sorted({e["crop"] for e in entries if e["measured"] and e["crop"] != 224})
    if small:
        print(f"Rows measured with {'/'.join(map(str, small))}-pixel crops (not the paper's 224, e.g. the digits"
              " chain): they check the machinery, not the paper's claims.")
    return entries


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_options(report, argv, "deepconv report", ALIASES, ("run_root", "the folder holding the runs"))


def main(argv: list[str]) -> int:
    report(**parse(argv))
    return 0
