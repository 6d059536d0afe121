"""The one way a deepconv subcommand reads its command line: a typed function's signature, through jsonargparse.

Every subcommand gets the same things from it: `-c/--config FILE` (YAML with any of the options),
`--print_config`, `--help` laid out by jsonargparse, options spelled with underscores (`--batch_size`, as
LightningCLI spells `--trainer.max_epochs`), no prefix abbreviations, and an unknown option answered with one
line, "did you mean" the nearest option, exit 2. What shells users type keeps working as hidden aliases:
`--batch-size` for `--batch_size`, `--flag` / `--no-flag` for a boolean's `--flag true/false`, and a list option
repeated (`--ckpt a --ckpt b`) for `--ckpt [a,b]`.
"""

import argparse
import difflib
import inspect
import json
import types
from collections.abc import Callable
from typing import Union, get_args, get_origin

from deepconv_cli.errors import one_line_usage, usage

BOOL_WORDS = {"true", "false", "yes", "no", "1", "0", "on", "off"}
Positional = tuple[str, str]


class OneLineParser(argparse.ArgumentParser):
    """argparse that raises the one-line usage error (exit 2) instead of printing usage and exiting."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise usage(f"{message} (see `{self.prog.split(' [')[0]} --help`)")


def _kind(annotation: object) -> str:
    """'bool', 'list' or 'other' for a parameter annotation (Optional[...] looked through)."""
    if annotation is bool:
        return "bool"
    if get_origin(annotation) is list:
        return "list"
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = {_kind(a) for a in get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else "other"
    return "other"


def option_kinds(function: Callable) -> dict[str, str]:
    """--name -> 'bool' | 'list' | 'other' for every parameter of `function`."""
    return {f"--{name}": _kind(p.annotation) for name, p in inspect.signature(function).parameters.items()}


def normalise_argv(argv: list[str], kinds: dict[str, str], aliases: dict[str, str] | None = None) -> list[str]:
    """Rewrite the hidden alias spellings into the one spelling jsonargparse parses (see the module docstring)."""
    aliases = aliases or {}
    out: list[str] = []
    lists: dict[str, tuple[int, list[str]]] = {}  # option -> (position in out, values)
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        name, eq, value = arg.partition("=")
        if (not arg.startswith("--") and name not in aliases) or arg == "--":  # short aliases such as -k pass
            out.append(arg)
            continue
        if aliases.get(name) == "":  # an option spelling of a positional: `--name D` is `D`
            if eq:
                out.append(value)
            continue
        if name in aliases:
            name, _, fixed = aliases[name].partition("=")
            if fixed and not eq:
                eq, value = "=", fixed
        underscored = "--" + name[2:].replace("-", "_")
        if underscored in kinds:
            name = underscored
        elif underscored.startswith("--no_") and kinds.get("--" + underscored[5:]) == "bool" and not eq:
            out.append(f"--{underscored[5:]}=false")
            continue
        kind = kinds.get(name)
        if kind == "bool" and not eq:
            if i < len(argv) and argv[i].lower() in BOOL_WORDS:
                eq, value = "=", argv[i]
                i += 1
            else:
                eq, value = "=", "true"
        elif kind == "list" and not name.endswith("+"):
            if not eq and i < len(argv):
                value, eq = argv[i], "="
                i += 1
            if eq:
                values = _list_items(value)
                if name in lists:
                    lists[name][1].extend(values)
                else:
                    lists[name] = (len(out), values)
                    out.append(name)  # placeholder, filled in below
                continue
        out.append(f"{name}{eq}{value}" if eq else name)
    for name, (position, values) in lists.items():
        out[position] = f"{name}={json.dumps(values)}"
    return out


def _list_items(value: str) -> list[str]:
    if value.startswith("["):
        try:
            items = json.loads(value)
            if isinstance(items, list):
                return [str(v) for v in items]
        except ValueError:
            pass
        return [v.strip() for v in value.strip("[]").split(",") if v.strip()]
    return [value]


def _argument_help(function: Callable) -> dict[str, str]:
    from docstring_parser import parse

    return {p.arg_name: p.description or "" for p in parse(inspect.getdoc(function) or "").params}


def parse_options(
    function: Callable,
    argv: list[str],
    prog: str,
    aliases: dict[str, str] | None = None,
    positional: Positional | list[Positional] | None = None,
) -> dict:
    """Keyword arguments for `function` from `argv`, parsed the one deepconv way (see the module docstring).

    `aliases` maps extra hidden spellings to an option (`{"--from": "--source"}`), optionally with a fixed value
    (`{"--json": "--json_output=true"}`), or to "" for an option spelling of a positional (`{"--name": ""}`).
    `positional` = (parameter, help), or a list of them: parameters given without an option name; a list-typed
    one takes one or more values; one with a default may be left out.
    """
    from jsonargparse import ActionConfigFile, ArgumentParser

    positionals = [positional] if isinstance(positional, tuple) else list(positional or [])
    kinds = option_kinds(function)
    for name, _ in positionals:
        kinds.pop(f"--{name}", None)
    summary = (inspect.getdoc(function) or "").split("\n\nArgs:")[0]
    parser = ArgumentParser(prog=prog, description=summary, exit_on_error=False, allow_abbrev=False)
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="a YAML file with any of these options")
    parameters = inspect.signature(function).parameters
    helps = _argument_help(function)
    for name, text in positionals:
        annotation, default = parameters[name].annotation, parameters[name].default
        many = _kind(annotation) == "list"
        kind = str if many or annotation is inspect.Parameter.empty else annotation
        if default is inspect.Parameter.empty:
            parser.add_argument(name, nargs="+" if many else None, type=kind, help=text or helps.get(name))
        else:  # a positional that may be left out (`deepconv models [NAME]`)
            parser.add_argument(name, nargs="*" if many else "?", type=kind, default=default,
                                help=text or helps.get(name))
    parser.add_function_arguments(function, as_group=False, skip={name for name, _ in positionals})
    try:
        config = parser.parse_args(normalise_argv(argv, kinds, aliases)).as_dict()
    except argparse.ArgumentError as e:
        raise one_line_usage(e, [*kinds, *(aliases or {})], prog) from None
    for key in ("config", "__path__", "print_config"):
        config.pop(key, None)
    return config


def required_positionals(function: Callable) -> list[Positional]:
    """The parameters without a default, in order: what `run_function` takes without an option name."""
    return [(name, "") for name, p in inspect.signature(function).parameters.items() if p.default is p.empty]


def action_name(function: Callable) -> str:
    """The word that chooses `function` among several (`digit_boxes` -> digit-boxes)."""
    return function.__name__.replace("_", "-")


def _list_functions(functions: list[Callable], prog: str) -> None:
    names = {action_name(f): f for f in functions}
    width = max(10, *map(len, names))
    lines = "\n".join(f"  {n:<{width}} {(inspect.getdoc(f) or '').splitlines()[0]}" for n, f in names.items())
    print(f"usage: {prog} {{{','.join(names)}}} [options]   ({prog} NAME --help for its options)\n\n{lines}")


def parse_function(functions: Callable | list[Callable], argv: list[str], prog: str,
                   aliases: dict[str, str] | None = None,
                   positional: dict[str, list[Positional]] | None = None,
                   others: tuple[str, ...] = ()) -> tuple[Callable, dict]:
    """The function `run_function` would call (one of several, chosen by the first word) and its arguments.

    Parsing only: nothing is run and no file is read but a `-c` config, so a recipe can check a stage's command
    line before any stage starts. `aliases` as for `parse_options`; `positional` names a function's positional
    parameters (default: its required ones); `others` are words the caller handles itself (named in errors).
    """
    if isinstance(functions, list):
        names = {action_name(f): f for f in functions}
        if not argv or argv[0] not in names:
            close = difflib.get_close_matches(argv[0], names, n=1) if argv else []
            hint = f" (did you mean {close[0]}?)" if close else ""
            given = f" {argv[0]!r}" if argv else ": none given"
            raise usage(f"unknown {prog}{given}{hint}; choose one of {', '.join([*others, *names])}")
        function, argv, prog = names[argv[0]], argv[1:], f"{prog} {argv[0]}"
    else:
        function = functions
    chosen = (positional or {}).get(function.__name__, required_positionals(function))
    return function, parse_options(function, argv, prog, aliases, chosen)


def run_function(functions: Callable | list[Callable], argv: list[str], prog: str) -> object:
    """Run a typed function (or one of several, chosen by the first word) as a subcommand.

    Required parameters are positional (`deepconv stats DATA_DIR`), the others options (`--max_images N`).
    """
    if isinstance(functions, list) and argv[:1] in ([], ["-h"], ["--help"]):
        _list_functions(functions, prog)
        if not argv:
            raise usage(f"choose one of: {', '.join(map(action_name, functions))}")
        return None
    function, kwargs = parse_function(functions, argv, prog)
    return function(**kwargs)
