"""One module per `deepconv` subcommand, each exposing `main(argv) -> int | None`, all declared the same way.

How a subcommand is declared (the one command style, issue 11 item 4):

1. Write a typed function whose docstring's first paragraph is the command's summary and whose `Args:` section
   documents every parameter; annotate with `Literal[...]` for choices, `bool`, `list[str]`, `X | None`:

       def similar(ckpt: str, images: list[str], topk: int = 5, json_file: str | None = None) -> None:
           \"\"\"Nearest training images by penultimate-layer features.

           Args:
               ckpt: a deepconv checkpoint.
               ...
           \"\"\"

2. `main(argv)` parses with `deepconv_cli.cli.options`:
       run_function(similar, argv, "deepconv similar")            # required parameters become positional
   or, to choose what is positional and add hidden spellings:
       similar(**parse_options(similar, argv, "deepconv similar", aliases={"--json": "--json_file"},
                               positional=("images", "image files and folders")))
   Both give `-c/--config FILE`, `--print_config`, jsonargparse's `--help` layout, no prefix abbreviations, and
   an unknown option answered in one line with the nearest option suggested (exit 2).
3. Spell options with underscores (`--batch_size`); `--batch-size`, `--flag`/`--no-flag` and a repeated list
   option (`--ckpt a --ckpt b`) are accepted as hidden aliases without declaring them.
4. Import torch, Lightning and the heavy modules inside the function, after the paths have been checked
   (`files.existing_file`), so `--help` and a mistyped path answer in about a second.
   A command with actions (`deepconv data digits|digit-boxes`, `benchmark`, `recipe`) passes a list of functions
   to `run_function`: the first word chooses one (`digit_boxes` is typed `digit-boxes`).
5. Register the command in `deepconv_cli/cli/commands.py` COMMANDS and in README's command table.
6. A command a recipe stage may run (recipes/runner.py COMMANDS) also has `parse(argv)`: the parsing `main` does,
   without running anything; `recipe run` checks every pending stage with it before the first one starts.

`train`, `fine-tune` and `localise fit` are LightningCLI (jsonargparse too): the same spelling rule and one-line
errors. Their options are declared once (training/options.py), read by LightningCLI's parser and, before
Lightning is imported, by `--help` (cli/train_help.py: deepconv's own options first, the module's and data's read
from their sources) and by `precheck` (cli/train.py: config files, data folder, checkpoint, `--model.*`/`--data.*`
names, architecture, required options), so a mistyped path or option answers in a fraction of a second;
everything else is LightningCLI's parse; `--help trainer` is LightningCLI's full help. The run itself (threads,
the fit; the lock, resume and finished state in training/lifecycle.py) is training/'s: `cli/` only parses and calls.
"""

from deepconv_cli.cli.options import parse_options, run_function

__all__ = ["parse_options", "run_function"]
