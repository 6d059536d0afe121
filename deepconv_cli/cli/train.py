"""`deepconv train`: LightningCLI's fit with the paper's defaults (training/run.py), entered cheaply.

`--help` and mistyped paths are answered before torch and Lightning are imported (seconds instead of a minute
on a busy machine); on a CPU without `-c` the command says what it is about to train and where the CPU-sized
recipe is.
"""

from pathlib import Path

from deepconv_cli.cli.train_help import LINKED, SOURCES, class_options, train_help, wants_help
from deepconv_cli.errors import one_line_usage, usage
from deepconv_cli.files import is_url

QUICKSTART = "recipes/quickstart/vgg_a.yaml"


def option_values(argv: list[str], *names: str) -> list[str]:
    """Every value given on the command line for any of `names` (`--x V` or `--x=V`)."""
    values = []
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in names:
            if eq:
                values.append(value)
            elif i + 1 < len(argv):
                values.append(argv[i + 1])
    return values


def check_paths(argv: list[str]) -> None:
    """Config files and a data folder named on the command line exist (checked before Lightning is imported)."""
    for config in option_values(argv, "-c", "--config"):
        if not Path(config).is_file():
            raise usage(f"config file not found: {config}")
    for data in option_values(argv, "--data.data_dir", "--data.data-dir"):
        if not Path(data).is_dir() and not is_url(data):  # packed data by URL
            raise usage(f"data_dir not found: {data} (expected a folder with train/ and val/)")


def check_option_names(argv: list[str], prog: str, sources: dict[str, tuple[str, str]] = SOURCES,
                       linked: set[str] = LINKED) -> None:
    """--model.* and --data.* names checked against the classes' sources (before Lightning is imported)."""
    for section in ("model", "data"):
        known = [row[0] for row in class_options(section, sources, linked)] + [f"--{key}" for key in linked]
        if len(known) == len(linked):  # the source could not be read: LightningCLI will check
            continue
        for arg in argv:
            name = "--" + arg.partition("=")[0][2:].replace("-", "_")
            if name.startswith(f"--{section}.") and name not in known:
                raise one_line_usage(ValueError(f"unrecognized arguments: {name}"), known, prog)


def config_arch(path: str) -> str | None:
    """`model.arch` (or `model.init_args.arch`) of a YAML config, if it names one."""
    import yaml

    try:
        model = (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get("model") or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
        return None  # LightningCLI reports what is wrong with the file
    arch = model.get("arch", (model.get("init_args") or {}).get("arch")) if isinstance(model, dict) else None
    return arch if isinstance(arch, str) else None


def check_arch_names(argv: list[str]) -> None:
    """`--model.arch` given on the command line or in a -c config names a registered architecture; a typo is one
    line with a suggestion, exit 2 (instead of jsonargparse's list of every allowed name)."""
    configs = [config_arch(c) for c in option_values(argv, "-c", "--config")]
    names = [n for n in configs if n] + option_values(argv, "--model.arch")
    if names:
        from deepconv_cli.models.registry import check_arch

        for name in names:
            check_arch(name)


def cpu_note(cli, argv: list[str]) -> str | None:
    """What a config-less run on a CPU is about to do, and the recipe that suits a CPU."""
    if option_values(argv, "-c", "--config") or not cli.on_cpu():
        return None
    meta, data = cli.model.meta, cli.datamodule
    params = sum(p.numel() for p in cli.model.parameters())
    from deepconv_cli.models.registry import get_spec

    title = get_spec(meta.arch).display_name
    return (f"note: no -c config: training {title} at width {meta.width:g} ({params / 1e6:.1f} M parameters)"
            f" on {data.crop_size}px crops, batch {data.batch_size}, on the CPU; full-width nets take minutes per"
            f" step here. For a CPU-sized run: deepconv train -c {QUICKSTART} (or the whole chain: deepconv recipe"
            " run recipes/quickstart.yaml)")


def start(argv: list[str], prog: str, fine_tune: bool = False):
    """Help, path checks, then the LightningCLI (imported only now)."""
    asked = wants_help(argv)
    if asked == "short":
        print(train_help(prog, FINE_TUNE_OPTIONS if fine_tune else None, FINE_TUNE_SUMMARY if fine_tune else ""))
        return None
    check_paths(argv)
    check_option_names(argv, prog)
    check_arch_names(argv)
    from deepconv_cli.training.run import build_cli

    cli = build_cli(["--help"] if asked == "full" else argv, prog=prog, fine_tune=fine_tune)
    note = cpu_note(cli, argv)
    if note and cli.trainer.is_global_zero and not any(a.startswith("--print_config") for a in argv):
        print(note)
    return cli


FINE_TUNE_SUMMARY = (
    "Train a network initialised from a trained checkpoint (VGG section 3.1: deepening A -> B..E, S=256 -> 384 -> "
    "[256,512]; or the same architecture on new classes); everything `deepconv train` accepts is accepted. "
    "Optimizer, scheduler and epoch counters start "
    "fresh; an interrupted run resumes from RUN_DIR/last.ckpt like `train`.")
FINE_TUNE_OPTIONS = [
    ("--init_from CKPT", "the trained checkpoint (a shallower net for deepening, or the same architecture); required"),
    ("--init_layers paper|all", ("paper: A's first four convs + three FCs into the same positions (default when the "
                                "architectures differ); all: every layer (default for the same architecture)")),
]


def parse(argv: list[str], prog: str = "deepconv train", fine_tune: bool = False):
    """The configuration `main` trains with, parsed by LightningCLI's own parser (config files and types checked);
    nothing is built, seeded or read, and paths are not checked (a recipe's earlier stages may write them)."""
    check_option_names(argv, prog)
    check_arch_names(argv)
    from deepconv_cli.training.run import build_cli

    return build_cli(argv, prog=prog, fine_tune=fine_tune, parse_only=True).config


def main(argv: list[str]) -> int:
    cli = start(argv, "deepconv train")
    if cli is not None:
        from deepconv_cli.training.fit import fit

        fit(cli)
    return 0
