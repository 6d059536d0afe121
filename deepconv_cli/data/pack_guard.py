"""What keeps a pack from being silently wrong: OUT resolved and checked before any work, one writer per OUT (a file
lock), the source fingerprint an interrupted pack (local or on s3://) must match to be continued, and the chunk
check every reader makes when it opens a local pack."""

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deepconv_cli.errors import failure, usage
from deepconv_cli.files import is_url

SOURCE_FILE = "deepconv-source.json"  # in .OUT.packing while packing: what the finished chunks were made from


def resolve_out(out: str, src: Path) -> str:
    """OUT as an absolute path with symlinks followed (a URL unchanged); refused before any work (exit 2): the
    current folder, a folder inside SRC, a place under a file or that cannot be written."""
    if is_url(out):
        return out
    path = Path(out).resolve()
    if path == Path.cwd().resolve() or path in Path.cwd().resolve().parents:
        raise usage(f"{out} is the current folder (or holds it): name a new folder for the pack, e.g. {out}/packed")
    source = src.resolve()
    if path == source or source in path.parents:
        raise usage(f"{out} is inside the source {src}: the pack would become part of what it packs")
    parent = next((p for p in path.parents if p.exists()), path.parent)
    if not parent.is_dir():
        raise usage(f"cannot create {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise usage(f"cannot create {out}: {parent} is not writable")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise usage(f"{out} already exists and is not an empty folder")
    return str(path)


@contextmanager
def writing(out: str) -> Iterator[None]:
    """The one `data pack` writing OUT: a second one answers one line (exit 1) and touches nothing."""
    if is_url(out):
        yield
        return
    from filelock import FileLock, Timeout

    path = Path(out)
    lock = FileLock(path.parent / f".{path.name}.lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        open(lock.lock_file, "a").close()  # noqa: SIM115 - a place filelock cannot create its file in says so here
        lock.acquire(timeout=0)
    except Timeout:  # an OSError too: first
        raise failure(f"another `deepconv data pack` is writing {out} (lock {lock.lock_file}); wait for it to "
                      "finish, or stop it") from None
    except OSError as e:  # a read-only or virtual file system (/sys, /proc) that os.access let through
        raise usage(f"cannot create {out}: {e.strerror or e}") from None
    try:
        yield
    finally:
        lock.release()


def fingerprint(src: Path, samples: dict[str, list[tuple[str, int]]], boxes: Path | None, options: dict) -> str:
    """A hash of the source listing (each image's path, label, size and modification time; the box files' too)
    and the options that shape the chunks."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    files = [(split, path, label) for split, items in sorted(samples.items()) for path, label in items]
    if boxes is not None:
        box_files = sorted(p for p in boxes.rglob("*") if p.is_file()) if boxes.is_dir() else [boxes]
        files += [("boxes", str(p), -1) for p in box_files]
    for split, path, label in files:
        stat = os.stat(path)
        digest.update(f"{split}\0{os.path.relpath(path, src)}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def continue_or_restart(staging: str, source: str, restart: bool) -> None:
    """An interrupted pack in `staging` is continued only when it was made from the same source and options;
    otherwise one line (exit 1), or with `restart` it is deleted and packing starts over."""
    if is_url(staging):
        _continue_or_restart_s3(staging, source, restart)
        return
    folder = Path(staging)
    marker = folder / SOURCE_FILE
    if folder.exists():
        try:
            same = json.loads(marker.read_text()).get("source") == source
        except (OSError, ValueError):
            same = False
        if not same and not restart:
            raise failure(f"the interrupted pack in {folder} was made from other source files or options than this "
                          "command's; pass --restart to delete it and pack from the beginning")
        if not same or restart:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"source": source}))


def check_chunks(root: str | Path, meta: dict, splits: tuple[str, ...]) -> None:
    """A local pack's index.json against its chunk files and its metadata: one line naming the damaged file."""
    for split in splits:
        index = Path(root, split, "index.json")
        again = f"delete {root} and pack it again (deepconv data pack SRC {root})"
        try:
            chunks = json.loads(index.read_text())["chunks"]
            items = sum(int(chunk["chunk_size"]) for chunk in chunks)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise failure(f"damaged pack: {index} is unreadable ({type(e).__name__}: {e}); {again}") from None
        expected = len(meta["splits"][split]["labels"])
        if items != expected:
            raise failure(f"damaged pack: {index} lists {items} images, {Path(root, 'deepconv-packed.json')} "
                          f"{expected}; {again}")
        for chunk in chunks:
            path = index.parent / str(chunk.get("filename"))
            size = path.stat().st_size if path.is_file() else None
            if size != chunk.get("chunk_bytes"):
                problem = "missing" if size is None else f"{size} bytes, the index says {chunk.get('chunk_bytes')}"
                raise failure(f"damaged pack: {path} is {problem}; {again}")


def _continue_or_restart_s3(url: str, source: str, restart: bool) -> None:
    """`continue_or_restart` for a pack written straight to s3:// (no staging folder, no lock: the fingerprint
    object under the prefix says what the objects there were made from). Objects without one, or made from other
    files or options, are refused unless `restart`, which deletes everything under the prefix first."""
    if not url.startswith("s3://"):
        return  # another object store: left as litdata leaves it
    from deepconv_cli.data import storage

    marker = f"{url.rstrip('/')}/{SOURCE_FILE}"
    if storage.keys_under(url, limit=1):
        if not restart:
            try:
                same = storage.exists(marker) and json.loads(storage.read_bytes(marker)).get("source") == source
            except (ValueError, AttributeError):
                same = False
            if same:
                return
            raise failure(f"{url} already holds objects made from other source files or options than this command's "
                          "(or not by `deepconv data pack`); pass --restart to delete everything under it and pack "
                          "from the beginning")
        storage.delete_under(url)
    storage.write_bytes(marker, json.dumps({"source": source}).encode())
