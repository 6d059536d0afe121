"""The one exception type for mistakes a user can make: a message and an exit code, printed as one line.

`one_line_usage` turns a parser's error (jsonargparse, LightningCLI) into that line, the nearest option suggested.
"""

import difflib
import re
from collections.abc import Iterable

USAGE = 2  # the command line, a config or a path is wrong
FAILURE = 1  # the input was well-formed but the work could not be done (corrupt file, diverged run, ...)
INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C


class DeepconvError(Exception):
    """Raised for anything a user caused; `deepconv` prints `message` on one line and exits with `code`."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def usage(message: str) -> DeepconvError:
    return DeepconvError(message, USAGE)


def failure(message: str) -> DeepconvError:
    return DeepconvError(message, FAILURE)


def suggestion(message: str, known: Iterable[str]) -> str:
    """' (did you mean --x?)' for the unknown options named in a parser's `message`, or ''."""
    known = sorted(set(known))
    guesses = []
    words = re.findall(r"--[\w.\-]+", message)  # and a config file's key: "Group 'model' does not accept option 'x'"
    words += [
        f"--{group}.{key}" for group, key in re.findall(r"Group '([\w.]+)' does not accept option '(\w+)'", message)
    ]
    for word in words:
        if word in known:
            continue
        close = difflib.get_close_matches(word.replace("-", "_").replace("__", "--", 1), known, n=1, cutoff=0.6)
        if close and close[0] not in guesses:
            guesses.append(close[0])
    return f" (did you mean {' or '.join(guesses)}?)" if guesses else ""


def one_line_usage(error: BaseException, known: Iterable[str], prog: str):
    """The DeepconvError (exit 2) for a parser's error: one line, the nearest option suggested."""
    known = list(known)
    message = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    required = re.search(r"required: (.*)$", message)
    if required:  # jsonargparse names a missing option by its key: show it as it is typed
        names = [n.strip() for n in required.group(1).split(",")]
        typed = [f"--{n}" if f"--{n}" in known else n for n in names]
        message = message[: required.start(1)] + ", ".join(typed)
    return usage(f"{message}{suggestion(message, known)} (see `{prog} --help`)")
