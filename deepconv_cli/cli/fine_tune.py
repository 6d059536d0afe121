"""`deepconv fine-tune`: `deepconv train` with the network initialised from a trained checkpoint (section 3.1).

Everything `train` accepts is accepted here, plus:
  --init-from CKPT         the trained checkpoint (a shallower net for deepening, or the same architecture)
  --init-layers paper|all  paper: A's first four convs + three FCs into the same positions (default when the
                           architectures differ); all: every layer (default for the same architecture)
Optimizer, scheduler and epoch counters start fresh: this is initialisation, not Lightning's resume. A run
interrupted after its first checkpoint resumes from RUN_DIR/last.ckpt like `train` does.
"""

import argparse

from rich.console import Console
from rich.table import Table

from deepconv_cli.cli.options import OneLineParser
from deepconv_cli.cli.train import DeepconvCLI, build_cli, fit
from deepconv_cli.errors import usage
from deepconv_cli.models.checkpoint import load_model
from deepconv_cli.models.deepen import CopyRow, initialise_from


class FineTuneCLI(DeepconvCLI):
    records_init = True  # config.yaml says which checkpoint the run started from


def split_argv(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = OneLineParser(prog="deepconv fine-tune", add_help=False)
    parser.add_argument("--init-from", "--init_from", dest="init_from")
    parser.add_argument("--init-layers", "--init_layers", dest="init_layers", choices=("paper", "all"))
    return parser.parse_known_args(argv)


def copy_table(rows: list[CopyRow], target: str, source: str, path: str) -> Table:
    table = Table(title=f"{target} initialised from {source} ({path})")
    for col in ("target layer", "source layer", "shape", "init"):
        table.add_column(col)
    for r in rows:
        shape = "x".join(map(str, r.shape))
        init = "[green]copied[/]" if r.copied else f"[yellow]random ({r.note})[/]" if r.note else "random"
        table.add_row(r.target, r.source or "-", shape, init)
    return table


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
    opts, rest = split_argv(argv)
    asks_only = any(a in ("-h", "--help") or a.startswith("--print_config") for a in argv)
    if not opts.init_from and not asks_only:
        raise usage("fine-tune needs --init-from CKPT (a trained deepconv checkpoint)")
    source, source_meta = load_model(opts.init_from) if opts.init_from else (None, None)
    recorded = [f"--init_from={opts.init_from}"] + ([f"--init_layers={opts.init_layers}"] if opts.init_layers else [])
    cli = build_cli(rest + (recorded if opts.init_from else []), prog="deepconv fine-tune", cli_class=FineTuneCLI)
    target = cli.model.model
    scheme = opts.init_layers or ("all" if source_meta.arch == target.arch else "paper")
    try:
        rows = initialise_from(target, source, scheme)
    except ValueError as e:
        raise usage(str(e)) from None
    if source_meta.preprocessing != "mean_rgb":  # imported weights keep the normalisation they were trained with
        cli.model.keep_preprocessing(source_meta)
    if cli.trainer.is_global_zero:
        Console().print(copy_table(rows, target.arch, source_meta.arch, opts.init_from))
    fit(cli)
    return 0
