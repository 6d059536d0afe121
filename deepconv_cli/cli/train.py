"""`deepconv train`: LightningCLI's fit with the paper's defaults (training/run.py), entered cheaply.

`precheck` answers from the command's declaration (training/options.py, and its classes' `__init__` options read by
cli/train_help.py), before torch and Lightning are imported: a missing config file, data folder or checkpoint, an
unknown model or data option (the nearest one suggested), an unknown architecture (on the command line or in a -c
config), a required option that neither the command line nor a -c config gives. It
returns the command line spelled as LightningCLI parses it: hidden aliases and dashed names rewritten by
cli/options.py's `normalise_argv`, the rewriting every other subcommand's options go through.
"""

from pathlib import Path

from deepconv_cli.cli.options import OneLineParser, normalise_argv
from deepconv_cli.cli.train_help import class_options, train_help, wants_help
from deepconv_cli.errors import one_line_usage, usage
from deepconv_cli.files import existing_file, is_url
from deepconv_cli.training.options import TRAIN, Option, TrainingCommand


def _check_path(option: Option, value: str) -> None:
    if option.path == "config" and not Path(value).is_file():
        raise usage(f"config file not found: {value}")
    if option.path == "folder" and not Path(value).is_dir() and not is_url(value):  # packed data by URL
        raise usage(f"{option.name.rsplit('.', 1)[-1]} not found: {value} (expected a folder with train/ and val/)")
    if option.path == "checkpoint":
        existing_file(value, "checkpoint")


def config_value(path: str, key: str) -> object:
    """The value of a dotted `key` (`model.arch`, also under `init_args`) in a YAML config; None when absent."""
    import yaml

    try:
        node = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None  # LightningCLI reports what is wrong with the file
    for part in key.split("."):
        if isinstance(node, dict) and part not in node and isinstance(node.get("init_args"), dict):
            node = node["init_args"]
        node = node.get(part) if isinstance(node, dict) else None
    return node


def precheck(argv: list[str], command: TrainingCommand = TRAIN, paths: bool = True) -> list[str]:
    """`argv` checked against `command`'s declared options and spelled as LightningCLI parses it (see the module
    docstring). `paths=False` leaves paths unchecked: a recipe's earlier stages may write them."""
    declared = {o.name: o for o in command.all_checked()}
    sections = {s: [row[0][2:] for row in class_options(command, s)] for s in command.sources}
    names = [n for rows in sections.values() for n in rows]
    names += [n for n in declared if n != "config" and n not in names]
    kinds = {f"--{n}": "bool" if n in declared and declared[n].type is bool else "other" for n in names}
    aliases = {a: f"--{o.name}" for o in declared.values() for a in o.aliases if a.startswith("--")}
    argv = normalise_argv(argv, kinds, aliases)
    parser = OneLineParser(prog=command.prog, add_help=False)
    parser.add_argument("-c", "--config", action="append", default=[])
    for name in names:
        parser.add_argument(f"--{name}", action="append", default=[])
    given, rest = parser.parse_known_args(argv)
    for section, known in sections.items():  # --trainer.* and Lightning's own options are LightningCLI's to check
        unknown = [a.partition("=")[0] for a in rest if a.startswith(f"--{section}.") and known]
        if unknown:
            raise one_line_usage(ValueError(f"unrecognized arguments: {unknown[0]}"), [f"--{n}" for n in known],
                                 command.prog)
    for name, option in declared.items():
        values = getattr(given, name)
        if paths and option.path:
            for value in values:
                _check_path(option, value)
        if option.required and not values and not any(config_value(c, name) for c in given.config) \
                and not any(a.startswith("--print_config") for a in argv):
            raise usage(option.required)
    archs = [config_value(c, "model.arch") for c in given.config] + getattr(given, "model.arch", [])
    archs = [a for a in archs if isinstance(a, str)]
    if archs:
        from deepconv_cli.models.registry import check_arch

        for name in archs:
            check_arch(name)
    return argv


def start(argv: list[str], command: TrainingCommand = TRAIN, summary: str = ""):
    """Help, the pre-checks, then the LightningCLI (imported only now)."""
    asked = wants_help(argv)
    if asked == "short":
        print(train_help(command, summary))
        return None
    argv = ["--help"] if asked == "full" else precheck(argv, command)
    from deepconv_cli.training.run import build_cli

    return build_cli(argv, command)


def parse(argv: list[str], command: TrainingCommand = TRAIN):
    """The configuration `main` trains with, parsed by LightningCLI's own parser (config files and types checked);
    nothing is built, seeded or read, and paths are not checked (a recipe's earlier stages may write them)."""
    argv = precheck(argv, command, paths=False)
    from deepconv_cli.training.run import build_cli

    return build_cli(argv, command, parse_only=True).config


def main(argv: list[str]) -> int:
    cli = start(argv)
    if cli is not None:
        from deepconv_cli.training.fit import fit

        fit(cli)
    return 0
