"""`deepconv models [NAME]`: every registered architecture (weight layers, parameters, FLOPs, the paper's count),
or one architecture's layers with their output sizes."""

import json

from rich.console import Console
from rich.table import Table

from deepconv_cli.cli.options import parse_options
from deepconv_cli.errors import usage

ALIASES = {"--json": "--json_output=true", "--name": ""}


def models(
    name: str | None = None, json_output: bool = False, num_classes: int = 1000, width: float = 1.0,
    crop_size: int | None = None,
) -> None:
    """List the architectures (VGG's Table 1 and 2, and the other networks of the source papers), or one
    architecture's layer table.

    Args:
        name: an architecture name or alias (e.g. D, vgg16, alexnet): print its layers and output sizes.
        json_output: print JSON instead of a table.
        num_classes: classes of the last layer.
        width: width multiplier.
        crop_size: training crop side (default: each architecture's own, 224 for VGG).
    """
    from deepconv_cli.models.registry import resolve_arch
    from deepconv_cli.models.summary import all_archs, arch_info, layer_rows

    kwargs = {"num_classes": num_classes, "width": width, "crop_size": crop_size}
    try:
        if name is not None:
            name = resolve_arch(name)
            _layers(name, layer_rows(name, **kwargs), arch_info(name, **kwargs).__dict__, json_output)
            return
        rows = all_archs(**kwargs)
    except ValueError as e:
        raise usage(str(e)) from None
    if json_output:
        print(json.dumps(rows, indent=1))
        return
    crop = f"{crop_size}px crops" if crop_size else "each network's own crop"
    table = Table(title=f"Architectures ({num_classes} classes, width x{width:g}, {crop})")
    numeric = ("weight layers", "parameters", "paper", "crop", "GFLOPs")
    for col in ("name", "family", "alias", *numeric, "note"):
        table.add_column(col, justify="right" if col in numeric else "left", no_wrap=col != "note")
    for r in rows:
        if "error" in r:
            table.add_row(r["name"], "", "", "", "", "", "", "", f"[dim]not at these settings: {r['error']}[/]")
            continue
        params = f"{r['parameters']:,}"
        if r["parameters_training"] != r["parameters"]:
            params += f"\n({r['parameters_training']:,} with aux)"
        table.add_row(r["name"], r["family"], r["alias"], str(r["weight_layers"]), params, r["paper"],
                      str(r["crop_size"]), f"{r['gflops']:.3g}", r["note"])
    Console().print(table)


def _layers(name: str, rows: list[dict], info: dict, json_output: bool) -> None:
    if json_output:
        print(json.dumps({"architecture": info, "layers": rows}, indent=1))
        return
    table = Table(title=f"{name}: {info['parameters']:,} parameters, {info['crop_size']}px crop, "
                        f"{info['gflops']:.3g} GFLOPs ({info['note']})")
    for col in ("layer", "type", "output (C x H x W)", "parameters"):
        table.add_column(col, justify="right" if col == "parameters" else "left")
    for r in rows:
        table.add_row(r["layer"], r["type"], r["output"], f"{r['parameters']:,}")
    Console().print(table)


def main(argv: list[str]) -> int:
    models(**parse_options(models, argv, "deepconv models", ALIASES, ("name", "")))
    return 0
