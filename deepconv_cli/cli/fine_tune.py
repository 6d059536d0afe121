"""`deepconv fine-tune`: `deepconv train` with the network initialised from a trained checkpoint (section 3.1).

Everything `train` accepts is accepted here, plus (options of the same LightningCLI parser, so they are
recorded in config.yaml and may be YAML keys; `--init-from`/`--init-layers` are accepted as aliases):
  --init_from CKPT         the trained checkpoint (a shallower net for deepening, or the same architecture)
  --init_layers paper|all  paper: A's first four convs + three FCs into the same positions (default when the
                           architectures differ); all: every layer (default for the same architecture)
  --freeze PATTERN         = --model.freeze: leave the parameters whose names match untrained (`features`: only the
                           FC layers train, as the VGG paper's ILSVRC-submission D in Table 6)
Optimizer, scheduler and epoch counters start fresh: this is initialisation, not Lightning's resume. A run
interrupted after its first checkpoint resumes from RUN_DIR/last.ckpt like `train` does.
"""

from deepconv_cli.cli.train import parse as parse_training
from deepconv_cli.cli.train import start
from deepconv_cli.errors import usage
from deepconv_cli.files import existing_file
from deepconv_cli.training.options import FINE_TUNE, INIT_FROM

SUMMARY = (
    "Train a network initialised from a trained checkpoint (VGG section 3.1: deepening A -> B..E, S=256 -> 384 -> "
    "[256,512]; or the same architecture on new classes); everything `deepconv train` accepts is accepted. "
    "Optimizer, scheduler and epoch counters start "
    "fresh; an interrupted run resumes from RUN_DIR/last.ckpt like `train`.")


def copy_table(rows, target: str, source: str, path: str):
    from rich.table import Table

    table = Table(title=f"{target} initialised from {source} ({path})")
    for col in ("target layer", "source layer", "shape", "init"):
        table.add_column(col)
    for r in rows:
        shape = "x".join(map(str, r.shape))
        init = "[green]copied[/]" if r.copied else f"[yellow]random ({r.note})[/]" if r.note else "random"
        table.add_row(r.target, r.source or "-", shape, init)
    return table


def parse(argv: list[str]):
    """The configuration `main` trains with (see train.parse); --init_from is required."""
    config = parse_training(argv, FINE_TUNE)
    if not config.get("init_from"):  # a -c config may give it
        raise usage(INIT_FROM.required)
    return config


def main(argv: list[str]) -> int:
    cli = start(argv, FINE_TUNE, SUMMARY)
    if cli is None:
        return 0
    init_from, init_layers = cli.config.get("init_from"), cli.config.get("init_layers")
    if not init_from:  # a -c config may give it
        raise usage(INIT_FROM.required)
    existing_file(init_from, "checkpoint")
    from deepconv_cli.models.checkpoint import load_model
    from deepconv_cli.models.deepen import initialise_from
    from deepconv_cli.tables import show
    from deepconv_cli.training.fit import fit

    source, source_meta = load_model(init_from)
    target = cli.model.model
    scheme = init_layers or ("all" if source_meta.arch == target.arch else "paper")
    try:
        rows = initialise_from(target, source, scheme)
    except ValueError as e:
        raise usage(str(e)) from None
    if source_meta.preprocessing not in ("mean_rgb", "mean_image"):  # imported weights keep their normalisation
        cli.model.keep_preprocessing(source_meta)
    if cli.trainer.is_global_zero:
        show(copy_table(rows, target.arch, source_meta.arch, init_from))
    fit(cli)
    return 0
