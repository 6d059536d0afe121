"""Files deepconv writes appear whole or not at all (temporary file next to the target, then a rename); read
errors on damaged files become one-line reasons."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; it is renamed to `path` when the block completes.

    When the block raises (a failed check, an interrupt), the temporary file is removed: no half-written or
    unverified artefact is ever left at `path`, and an older file there stays as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; the artefact gets the usual permissions
        os.replace(tmp, path)
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
