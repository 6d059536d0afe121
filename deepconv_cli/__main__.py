"""`deepconv` dispatcher: reads only the subcommand name, imports that subcommand lazily, prints errors as one line."""

import argparse
import importlib
import os
import sys

from deepconv_cli import __version__
from deepconv_cli.cli.commands import COMMANDS
from deepconv_cli.errors import USAGE, DeepconvError


def usage_text() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return (
        "usage: deepconv <command> [options]   (deepconv <command> --help for a command's options;"
        " deepconv -V: the version)\n\n"
        "Train, deepen, evaluate and export the very deep ConvNets of Simonyan & Zisserman (VGG A-E), and AlexNet,\n"
        "ZFNet, LeNet-5, NiN and GoogLeNet through the same commands.\n\n"
        "commands:\n" + "\n".join(lines)
    )


def one_line(message: str, limit: int = 600) -> str:
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:  # `deepconv train --help | head`: the reader has gone; no traceback for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage_text())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"deepconv {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"deepconv: error: unknown command {name!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return USAGE
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return module.main(argv[1:]) or 0
    except DeepconvError as e:
        print(f"deepconv {name}: error: {one_line(e)}", file=sys.stderr)
        return e.code
    except argparse.ArgumentError as e:
        print(f"deepconv {name}: error: {one_line(e)} (see `deepconv {name} --help`)", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print(f"deepconv {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an object store gone mid-run (data/storage.py): one line; anything else is a bug
        from deepconv_cli.data.storage import fault

        if (error := fault(e)) is None:
            raise
        print(f"deepconv {name}: error: {one_line(error)}", file=sys.stderr)
        return error.code


if __name__ == "__main__":
    sys.exit(main())
