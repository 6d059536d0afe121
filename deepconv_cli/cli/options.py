"""Command lines of export, predict and import: a typed function's options, plus shell-style flags and a positional.

`run_function` (auto_cli) makes required parameters positional and booleans take a value; these commands read
better as `--ckpt X img1 img2 --no-flip --fixed-size --from timm`. The function's signature and docstring still
give the types, defaults, --help and -c config.yaml; `aliases` rewrites the shell-style spellings first.
"""

import argparse
import inspect
from collections.abc import Callable
from typing import get_origin

from jsonargparse import ActionConfigFile, ArgumentParser

from deepconv_cli.errors import usage


class OneLineParser(argparse.ArgumentParser):
    """argparse that raises the one-line usage error (exit 2) instead of printing usage and exiting."""

    def error(self, message: str):
        raise usage(f"{message} (see `{self.prog.split(' [')[0]} --help`)")


def parse_options(
    function: Callable,
    argv: list[str],
    prog: str,
    aliases: dict[str, str] | None = None,
    positional: tuple[str, str] | None = None,
) -> dict:
    """Keyword arguments for `function` from `argv`.

    `positional` = (parameter, help): that parameter is given without an option name; one value, or one or more
    when it is annotated as a list.
    """
    aliases = aliases or {}
    rewritten = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name in aliases and not (eq and "=" in aliases[name]):  # --fixed-size=x is not a flag: left to the parser
            arg = aliases[name] + (f"={value}" if eq else "")
        rewritten.append(arg)
    summary = (inspect.getdoc(function) or "").split("\n\nArgs:")[0]
    parser = ArgumentParser(prog=prog, description=summary, exit_on_error=False)
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="a YAML file with any of these options")
    skip = set()
    if positional:
        many = get_origin(inspect.signature(function).parameters[positional[0]].annotation) is list
        parser.add_argument(positional[0], nargs="+" if many else None, type=str, help=positional[1])
        skip.add(positional[0])
    parser.add_function_arguments(function, as_group=False, skip=skip)
    config = parser.parse_args(rewritten).as_dict()
    config.pop("config", None)
    config.pop("__path__", None)
    return config
