"""`deepconv models`: every architecture of the table with its weight layers and parameter count."""

import json

from rich.console import Console
from rich.table import Table

from deepconv_cli.cli import run_function
from deepconv_cli.models.registry import all_archs


def models(json_output: bool = False, num_classes: int = 1000, width: float = 1.0, crop_size: int = 224) -> None:
    """List the VGG configurations (Table 1) with weight layers and parameters (Table 2 at the defaults).

    Args:
        json_output: print JSON instead of a table.
        num_classes: classes of the last layer.
        width: width multiplier.
        crop_size: training crop side (sets FC1's window).
    """
    rows = all_archs(num_classes=num_classes, width=width, crop_size=crop_size)
    if json_output:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=f"VGG configurations ({num_classes} classes, width x{width:g}, {crop_size}px crops)")
    for col in ("config", "alias", "weight layers", "parameters", "note"):
        table.add_column(col, justify="right" if col in ("weight layers", "parameters") else "left")
    for r in rows:
        table.add_row(r["name"], r["alias"], str(r["weight_layers"]), f"{r['parameters']:,}", r["note"])
    Console().print(table)


def main(argv: list[str]) -> int:
    argv = ["--json_output=true" if a == "--json" else a for a in argv]
    run_function(models, argv, "deepconv models")
    return 0
