"""`deepconv localise fit -c recipe.yaml --init_from CLS_CKPT`: train a localiser (Appendix A) with LightningCLI.

Parsed as `deepconv train` is: `--help` (deepconv's options first, read from the sources) and mistyped paths or
option names are answered before Lightning is imported; `--help trainer` prints LightningCLI's complete help. The
run's lifecycle is training/run.py's and training/fit.py's, with the localiser's module and data (localisation/fit.py).
"""

from deepconv_cli.cli.options import normalise_argv
from deepconv_cli.cli.train import check_option_names, check_paths, option_values
from deepconv_cli.cli.train_help import RUN_OPTIONS, train_help, wants_help
from deepconv_cli.errors import usage
from deepconv_cli.files import existing_file

PROG = "deepconv localise fit"
SOURCES = {"model": ("deepconv_cli.localisation.module", "LocaliserModule"),
           "data": ("deepconv_cli.localisation.data", "LocaliseData")}
LINKED = {"model.classes", "model.init_from"}  # classes come from the data; init_from is --init_from
TITLES = {"model": "model (the box regressor and its optimisation)",
          "data": "data (an ImageFolder tree with boxes: DATA_DIR/train, DATA_DIR/val, DATA_DIR/boxes)"}
SUMMARY = ("Train a bounding-box regressor as in Appendix A of the VGG paper (SCR: one box; PCR: one box per class)"
           ", fine-tuned from a classification checkpoint trained at the same S; the best checkpoint has the lowest "
           "validation localisation error (centre crop, ground-truth class).")
OPTIONS = [("--init_from CKPT", "the classification checkpoint the localiser starts from; required")]
INIT_FROM = {"--init-from": "--model.init_from", "--init_from": "--model.init_from"}


def localiser_argv(argv: list[str]) -> list[str]:
    """`--init_from CKPT` (required unless help is asked) becomes the module's `--model.init_from`."""
    argv = normalise_argv(argv, {}, INIT_FROM)
    asks_only = wants_help(argv) or any(a.startswith("--print_config") for a in argv)
    if not option_values(argv, "--model.init_from") and not asks_only:
        raise usage("localise fit needs --init_from CKPT (the classification checkpoint, trained at the same S)")
    return argv


def help_text() -> str:
    run = [row for row in RUN_OPTIONS if not row[0].startswith(("--curves", "-c"))]
    config = ("-c, --config FILE", "a YAML recipe with any of the options below (recipes/quickstart_localise/pcr.yaml"
              " on the digit boxes; recipes/imagenet/localise_pcr_*.yaml are the paper's)")
    return train_help(PROG, [*OPTIONS, config], SUMMARY, SOURCES, LINKED, TITLES, run, " --init_from CKPT")


def parse(argv: list[str]):
    """The configuration `main` trains with, parsed and checked by its LightningCLI parser; nothing built."""
    argv = localiser_argv(argv)
    check_option_names(argv, PROG, SOURCES, LINKED - {"model.init_from"})
    from deepconv_cli.localisation.fit import build_localise_cli

    return build_localise_cli(argv, parse_only=True).config


def main(argv: list[str]) -> int:
    asked = wants_help(argv)
    if asked == "short":
        print(help_text())
        return 0
    argv = localiser_argv(argv)
    if not asked:
        check_paths(argv)
        check_option_names(argv, PROG, SOURCES, LINKED - {"model.init_from"})
        for path in option_values(argv, "--model.init_from"):
            existing_file(path, "checkpoint")  # before Lightning is imported
    from deepconv_cli.localisation.fit import build_localise_cli
    from deepconv_cli.training.fit import fit

    cli = build_localise_cli(["--help"] if asked == "full" else argv)
    fit(cli)
    return 0
