"""Files deepconv writes appear whole or not at all (temporary file next to the target, then a rename); read
errors on damaged files become one-line reasons."""

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deepconv_cli.errors import FAILURE, USAGE, DeepconvError

URL_SCHEMES = ("s3://", "gs://", "gcs://", "azure://", "hf://")  # object storage that litdata (fsspec) reads


def is_url(path: str | Path) -> bool:
    """`path` names object storage (s3://, gs://, ...), which exists only for the library that opens it."""
    return str(path).startswith(URL_SCHEMES)

TEMP_SUFFIX = ".tmp"


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
def staged_file(path: str | Path, backup: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; when the block completes it is fsynced and renamed to `path`
    (and the folder fsynced), the one way deepconv puts any artefact in place.

    When the block raises (a failed check, an interrupt, a full disk), the temporary file is removed: no
    half-written or unverified artefact is ever left at `path`, and an older file there stays as it was. With
    `backup`, an existing `path` is moved there just before the new file takes its place. Temporary files carry
    the writer's pid, so ones left by a killed process are recognised and removed (`remove_stale_temp_files`).
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"cannot write {path}: it is a folder", FAILURE)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or reason(e)}", FAILURE) from None
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; the artefact gets the usual permissions
        if backup is not None and path.is_file():
            os.replace(path, backup)
        os.replace(tmp, path)
        _fsync(path.parent)
    except OSError as e:
        if isinstance(e, DeepconvError):
            raise
        raise WriteError(write_problem(path, e), FAILURE) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_problem(path: Path, e: OSError, needed: int | None = None) -> str:
    """One line for a failed write; on a full disk it says how much space is free there (and needed, if known)."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            free = 0
        need = f"needs about {_size(needed)}, " if needed else ""
        return (f"cannot write {path}: disk full ({need}{_size(free)} free on that file system); "
                f"the previous file there is kept: free some space and run the command again")
    return f"cannot write {path}: {e.strerror or reason(e)}"


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} bytes"


def _fsync(path: str | Path) -> None:
    """Flush a file or folder to disk; file systems that cannot fsync a folder are let be."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if os.path.isfile(path) and e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete `.NAME.PID.*.tmp` files in `folder` whose writer (PID, on this machine) is no longer running: what a
    kill -9 in the middle of a write leaves. Returns what was removed."""
    removed = []
    for tmp in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        match = re.search(r"\.(\d+)(\.[^.]*)?\.tmp$", tmp.name)
        if not match or _running(int(match.group(1))):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            continue
    return removed


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


@contextmanager
def staged_folder(path: str | Path) -> Iterator[Path]:
    """Yield a new temporary folder next to `path` (which must be absent or an empty folder: else a usage error);
    when the block completes the folder gets the usual permissions and takes `path`'s place, when it raises the
    folder is removed. A dataset deepconv writes is there whole or not at all."""
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DeepconvError(f"{target} already exists and is not an empty folder", USAGE)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as e:
        raise WriteError(f"cannot write {target}: {e.strerror or reason(e)}", FAILURE) from None
    try:
        yield staging
        try:
            staging.chmod(0o777 & ~_umask())  # mkdtemp's folder is private (0700); the result gets the usual mode
            if target.exists():
                target.rmdir()
            staging.rename(target)
        except OSError as e:
            raise WriteError(f"cannot write {target}: {e.strerror or reason(e)}", FAILURE) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text_atomically(path: str | Path, text: str) -> None:
    with staged_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def reason(e: BaseException, limit: int = 200) -> str:
    """`Type: first words of the message`, on one line, for errors raised by a reader on a damaged file."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:limit]}" if text else type(e).__name__
