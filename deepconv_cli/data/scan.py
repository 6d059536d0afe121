"""The bad-image pre-scan: decode every file once before training, so a corrupt image fails the run up front.

A file is good when PIL decodes all of it (JPEGs in draft mode: 1/8 size, but every byte of entropy-coded data is
still read, so truncation is caught). Results are cached per folder, keyed by the names, sizes and modification
times of the files scanned there, so a second run re-decodes only folders that changed.
"""

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from deepconv_cli.data.images import decode_rgb, open_lazily, why_unreadable
from deepconv_cli.files import write_text_atomically

SCAN_FILE = ".deepconv-scan.json"
CACHE_VERSION = 2  # 2: decoded through data/images.py's reader, symlink problems named


class BadImage(NamedTuple):
    path: str
    reason: str


def check_image(path: str) -> str | None:
    """None when `path` decodes completely as an image through the one reader, else why not (a short phrase).

    JPEGs are decoded in draft mode (1/8 size): every byte of entropy-coded data is still read."""
    try:
        with open_lazily(path) as img:
            decode_rgb(img, reduce=8)
    except Exception as e:  # noqa: BLE001 - truncated data, bad marker, decompression bomb, unreadable file
        return why_unreadable(path, e)
    return None


def file_signature(paths: list[str]) -> str:
    """A digest of the names, sizes and modification times of `paths` (a file that cannot be stat'ed, such as
    a dangling or looping symlink, counts by its name and the error), so any change to the files changes it."""
    digest = hashlib.sha1()
    for path in sorted(paths):
        try:
            st = os.stat(path)
            digest.update(f"{os.path.basename(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError as e:
            digest.update(f"{os.path.basename(path)}\0error {e.errno}\n".encode())
    return digest.hexdigest()


def _read_cache(candidates: Sequence[Path]) -> dict:
    for path in candidates:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("version") == CACHE_VERSION and isinstance(data.get("folders"), dict):
            return data["folders"]
    return {}


def _write_cache(folders: dict, candidates: Sequence[Path]) -> None:
    """Write to the first candidate that accepts it (temp file + rename); a read-only place is skipped."""
    text = json.dumps({"version": CACHE_VERSION, "folders": folders}, indent=0)
    for path in candidates:
        try:
            write_text_atomically(path, text)
            return
        except OSError:
            continue


def _decode_all(paths: list[str], workers: int, progress: bool) -> dict[str, str | None]:
    columns = (TextColumn("checking images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    results: dict[str, str | None] = {}
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("scan", total=len(paths))
        if workers > 1:
            # spawn, not fork: the caller may hold CUDA or process-group threads
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                for path, reason in zip(paths, pool.map(check_image, paths, chunksize=64)):
                    results[path] = reason
                    bar.advance(task)
        else:
            for path in paths:
                results[path] = check_image(path)
                bar.advance(task)
    return results


def scan_images(
    paths: Sequence[str | Path],
    cache: Sequence[Path] = (),
    workers: int = 0,
    progress: bool = True,
) -> tuple[list[str], list[BadImage]]:
    """Split `paths` into (good, bad) by decoding each file; order of `paths` is kept in both lists.

    Args:
        paths: image files.
        cache: candidate cache files (e.g. DATA_DIR/.deepconv-scan.json, then a run directory's); the first
            readable one is used and the result is written to the first writable one. Empty: no cache.
        workers: decoding processes (0 or 1: decode in this process).
        progress: show a rich progress bar while decoding.
    """
    paths = [str(p) for p in paths]
    by_folder: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        by_folder[os.path.dirname(os.path.abspath(path))].append(path)
    cached = _read_cache(cache) if cache else {}
    verdict: dict[str, str | None] = {}
    stale: dict[str, str] = {}
    for folder, files in by_folder.items():
        signature = file_signature(files)
        entry = cached.get(folder)
        if entry and entry.get("signature") == signature:
            bad = entry.get("bad", {})
            verdict.update({f: bad.get(os.path.basename(f)) for f in files})
        else:
            stale[folder] = signature
    todo = [f for folder in stale for f in by_folder[folder]]
    if todo:
        verdict.update(_decode_all(todo, workers, progress))
        if cache:
            for folder, signature in stale.items():
                bad = {os.path.basename(f): verdict[f] for f in by_folder[folder] if verdict[f]}
                cached[folder] = {"signature": signature, "bad": bad}
            _write_cache(cached, cache)
    good = [p for p in paths if verdict[p] is None]
    bad = [BadImage(p, verdict[p]) for p in paths if verdict[p] is not None]
    return good, bad
