"""`deepconv localise fit -c recipe.yaml --init_from CLS_CKPT`: train a localiser (Appendix A) with LightningCLI.

Parsed as `deepconv train` is (its options declared in training/options.py's LOCALISE_FIT): `--help` (deepconv's
options first, read from the sources) and mistyped paths or option names are answered before Lightning is imported;
`--help trainer` prints LightningCLI's complete help. The run's lifecycle is training/run.py's and training/fit.py's,
with the localiser's module and data (localisation/fit.py).
"""

from deepconv_cli.cli.train import precheck
from deepconv_cli.cli.train_help import train_help, wants_help
from deepconv_cli.training.options import LOCALISE_FIT

SUMMARY = ("Train a bounding-box regressor as in Appendix A of the VGG paper (SCR: one box; PCR: one box per class)"
           ", fine-tuned from a classification checkpoint trained at the same S; the best checkpoint has the lowest "
           "validation localisation error (centre crop, ground-truth class).")
CONFIG = ("-c, --config FILE", "a YAML recipe with any of the options below (recipes/quickstart_localise/pcr.yaml on "
          "the digit boxes; recipes/imagenet/localise_pcr_*.yaml are the paper's)")


def help_text() -> str:
    return train_help(LOCALISE_FIT, SUMMARY, CONFIG)


def parse(argv: list[str]):
    """The configuration `main` trains with, parsed and checked by its LightningCLI parser; nothing built."""
    argv = precheck(argv, LOCALISE_FIT, paths=False)
    from deepconv_cli.localisation.fit import build_localise_cli

    return build_localise_cli(argv, parse_only=True).config


def main(argv: list[str]) -> int:
    asked = wants_help(argv)
    if asked == "short":
        print(help_text())
        return 0
    argv = ["--help"] if asked == "full" else precheck(argv, LOCALISE_FIT)
    from deepconv_cli.localisation.fit import build_localise_cli
    from deepconv_cli.training.fit import fit

    fit(build_localise_cli(argv))
    return 0
