"""Every pending stage's command line checked by its command's own parser before any stage starts.

A stage's arguments go through exactly what `deepconv COMMAND` parses them with: the typed function signature
(cli/options.py) of evaluate, export, predict, compare and data; LightningCLI's parser for train, fine-tune and
localise fit, parse-only (training/run.py `build_cli(parse_only=True)`); the localise evaluate/predict parsers.
So a misspelt option or a wrong type in the last stage is answered, with the stage's name and the nearest option,
before the first stage runs. Paths are not checked here: `checks.problems` knows which ones earlier stages write.
"""

import importlib

from deepconv_cli.cli.commands import COMMANDS
from deepconv_cli.errors import DeepconvError, usage

ASKING = ("-h", "--help", "--print_config")


def check_arguments(recipe, stages) -> None:
    """Parse each stage's command line with its command's parser; the first mistake is a one-line usage error."""
    for stage in stages:
        argv = recipe.argv(stage)
        where = f"stage {stage.name} ({stage.command})"
        asking = next((a for a in argv if a.partition("=")[0] in ASKING), None)
        if asking:
            raise usage(f"{where}: {asking} prints and exits; it has no place in a recipe stage")
        module = importlib.import_module(COMMANDS[argv[0]][0])
        try:
            module.parse(argv[1:])
        except DeepconvError as e:
            raise DeepconvError(f"{where}: {e}", e.code) from None
