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

from deepconv_cli.cli.train import option_values, start
from deepconv_cli.cli.train import parse as parse_training
from deepconv_cli.cli.train_help import wants_help
from deepconv_cli.errors import usage
from deepconv_cli.files import existing_file


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


def freeze_alias(argv: list[str]) -> list[str]:
    """`--freeze PATTERN` spelled as the model option it is, `--model.freeze=PATTERN`."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--freeze" and i + 1 < len(argv):
            out.append(f"--model.freeze={argv[i + 1]}")
            i += 2
            continue
        out.append("--model.freeze=" + arg.split("=", 1)[1] if arg.startswith("--freeze=") else arg)
        i += 1
    return out


def parse(argv: list[str]):
    """The configuration `main` trains with (see train.parse); --init_from is required."""
    argv = freeze_alias(argv)
    config = parse_training(argv, "deepconv fine-tune", fine_tune=True)
    if not config.get("init_from"):
        raise usage("fine-tune needs --init_from CKPT (a trained deepconv checkpoint)")
    return config


def main(argv: list[str]) -> int:
    argv = freeze_alias(argv)
    given = option_values(argv, "--init_from", "--init-from")
    asks_only = wants_help(argv) or any(a.startswith("--print_config") for a in argv)
    if not given and not asks_only and not option_values(argv, "-c", "--config"):
        raise usage("fine-tune needs --init_from CKPT (a trained deepconv checkpoint)")
    for path in given:
        existing_file(path, "checkpoint")  # before Lightning is imported
    cli = start(argv, "deepconv fine-tune", fine_tune=True)
    if cli is None:
        return 0
    init_from, init_layers = cli.config.get("init_from"), cli.config.get("init_layers")
    if not init_from:
        raise usage("fine-tune needs --init_from CKPT (a trained deepconv checkpoint)")
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
