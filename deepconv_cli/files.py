"""Files deepconv writes appear whole or not at all (temporary file next to the target, then a rename); read
errors on damaged files become one-line reasons."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deepconv_cli.errors import FAILURE, USAGE, DeepconvError


class WriteError(DeepconvError, OSError):
    """A file could not be written (a folder in the way, no permission, disk full): one line, exit 1. Still an
    OSError, so callers that fall back to another location on OSError keep doing so."""


def existing_file(path: str | Path, what: str) -> Path:
    """`path` as a Path when it is a file; a one-line usage error (exit 2) naming `what` when it is not."""
    path = Path(path)
    if not path.exists():
        raise DeepconvError(f"{what} not found: {path}", USAGE)
    if path.is_dir():
        raise DeepconvError(f"{what} path is a directory, not a file: {path}", USAGE)
    return path


@contextmanager
def staged_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; it is renamed to `path` when the block completes.

    When the block raises (a failed check, an interrupt), the temporary file is removed: no half-written or
    unverified artefact is ever left at `path`, and an older file there stays as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"cannot write {path}: it is a folder", FAILURE)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or reason(e)}", FAILURE) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; the artefact gets the usual permissions
        os.replace(tmp, path)
    except OSError as e:
        if isinstance(e, DeepconvError):
            raise
        raise WriteError(f"cannot write {path}: {e.strerror or reason(e)}", FAILURE) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomically(path: str | Path, text: str) -> None:
    with staged_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def reason(e: BaseException, limit: int = 200) -> str:
    """`Type: first words of the message`, on one line, for errors raised by a reader on a damaged file."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:limit]}" if text else type(e).__name__
