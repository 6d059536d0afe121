"""One module per `deepconv` subcommand, each exposing `main(argv) -> int | None`."""

from collections.abc import Callable

from jsonargparse import auto_cli


def run_function(function: Callable, argv: list[str], prog: str) -> object:
    """Expose a typed function as a subcommand: --help, -c config.yaml and errors raised, not printed+exited."""
    return auto_cli(function, args=argv, exit_on_error=False, prog=prog)
