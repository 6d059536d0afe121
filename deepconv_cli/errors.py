"""The one exception type for mistakes a user can make: a message and an exit code, printed as one line."""

USAGE = 2  # the command line, a config or a path is wrong
FAILURE = 1  # the input was well-formed but the work could not be done (corrupt file, diverged run, ...)


class DeepconvError(Exception):
    """Raised for anything a user caused; `deepconv` prints `message` on one line and exits with `code`."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def usage(message: str) -> DeepconvError:
    return DeepconvError(message, USAGE)


def failure(message: str) -> DeepconvError:
    return DeepconvError(message, FAILURE)
