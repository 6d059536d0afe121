"""`deepconv data pack SRC OUT`: an ImageFolder tree (and its box annotations, when it has them) as litdata chunks.

Packing is resumable: a local OUT is written as .OUT.packing (litdata's `use_checkpoint` resumes a split, a split
whose index.json exists is done) and renamed to OUT when complete; a URL (s3://, gs://) is written in place.
"""

import io
import json
import multiprocessing
import os
import random
import sys
from functools import partial
from pathlib import Path

from PIL import Image

from deepconv_cli.data import storage
from deepconv_cli.data.pack_guard import SOURCE_FILE, continue_or_restart, fingerprint, resolve_out, writing
from deepconv_cli.data.pack_interrupt import ctrl_c_stops_packing, end_with_parent, quiet_resource_tracker
from deepconv_cli.data.packed import META_FILE, SPLITS, pack_path
from deepconv_cli.errors import INTERRUPTED, DeepconvError, failure, usage
from deepconv_cli.files import is_url


def capped_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The stored image's (width, height): the shorter side capped at `max_side` (0: no cap), as `encode` resizes."""
    w, h = size
    if max_side <= 0 or min(w, h) <= max_side:
        return w, h
    scale = max_side / min(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def encode(item: list, max_side: int = 0) -> dict:
    """litdata's `fn` for an item [path, label] (a list: litdata resumes only when the items equal those saved in
    its JSON checkpoint): the file's bytes (re-encoded when its shorter side exceeds `max_side` > 0), its label."""
    end_with_parent()
    path, label = item
    data = Path(path).read_bytes()
    if max_side > 0:
        from deepconv_cli.data.images import open_rgb

        img = open_rgb(path)
        if capped_size(img.size, max_side) != img.size:
            img = img.resize(capped_size(img.size, max_side), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=90)
            data = out.getvalue()
    return {"image": data, "label": label}


def pack_boxes(samples: list[tuple[str, int]], classes: list[str], source: Path, max_side: int) -> tuple[dict, list]:
    """({item index: {"size": [w, h], "boxes": [[x0, y0, x1, y1], ...]}} in the stored image's pixels, for the
    samples that have boxes; the bad annotations, reported here once and left out)."""
    from deepconv_cli.data.annotations import attach_boxes

    items, report = attach_boxes(samples, classes, source, skip_bad=True)
    for message in report.bad:
        print(f"bad box annotation (left out of the pack's boxes): {message}", file=sys.stderr)
    position = {path: i for i, (path, _) in enumerate(samples)}
    table = {}
    for item in items:
        (w, h), (sw, sh) = item.size, capped_size(item.size, max_side)
        boxes = [[x0 * sw / w, y0 * sh / h, x1 * sw / w, y1 * sh / h] for x0, y0, x1, y1 in item.boxes.tolist()]
        table[str(position[item.path])] = {"size": [sw, sh], "boxes": boxes}
    return table, report.bad


def pack(src: str | Path, out: str, max_side: int = 0, workers: int = 0, boxes: str | Path | None = None,
         restart: bool = False) -> dict:
    """Pack SRC/train and SRC/val into OUT; returns the metadata written. Bad files are reported once and left out.
    The box annotations `boxes` (default: SRC/boxes when it exists) are packed with the images they belong to.
    OUT is resolved and checked before any work and written by one command at a time (data/pack_guard.py); an
    interrupted pack is continued only from the same source and options (`restart`: start over)."""
    out = resolve_out(out, Path(src))
    with writing(out):
        return _pack(Path(src), out, max_side, workers, boxes, restart)


def _pack(src: Path, out: str, max_side: int, workers: int, boxes: str | Path | None, restart: bool) -> dict:
    import litdata

    from deepconv_cli.data.folder import ImageTree, check_tree, warn_skipped_links
    from deepconv_cli.data.scan import SCAN_FILE, scan_images

    if not src.is_dir():
        raise usage(f"source folder not found: {src} (expected a folder with train/ and val/)")
    classes = check_tree(src / "train", "training")
    if check_tree(src / "val", "validation") != classes:
        raise usage(f"{src}/train and {src}/val have different class folders")
    if not is_url(out) and Path(out).exists() and (not Path(out).is_dir() or any(Path(out).iterdir())):
        raise usage(f"{out} already exists and is not an empty folder")
    if boxes is not None and not Path(boxes).exists():
        raise usage(f"box annotations not found: {boxes} (a folder of <class>/<image>.xml files or a CSV)")
    box_source = Path(boxes) if boxes is not None else (src / "boxes" if (src / "boxes").exists() else None)
    workers = workers or os.cpu_count() or 1
    storage.check_reachable(out)  # the bucket, the credentials, the server: one line before any work
    quiet_resource_tracker()
    staging = out if is_url(out) else str(Path(out).parent / f".{Path(out).name}.packing")
    trees = {split: ImageTree(src / split) for split in SPLITS}
    source = fingerprint(src, {split: tree.samples for split, tree in trees.items()}, box_source,
                         {"max_side": max_side, "boxes": str(box_source), "version": 1})
    continue_or_restart(staging, source, restart)
    meta: dict = {"version": 1, "classes": classes, "max_side": max_side, "splits": {}, "bad": {}, "source": source}
    for split in SPLITS:
        tree = trees[split]
        warn_skipped_links(tree.skipped_links)
        files = [path for path, _ in tree.samples]
        _, bad = scan_images(files, [src / SCAN_FILE], workers=workers if len(files) >= 2000 else 0)
        for item in bad:  # reported here, once; training on the pack never meets them
            print(f"bad image (left out of the pack): {item.path}: {item.reason}", file=sys.stderr)
            meta["bad"][os.path.relpath(item.path, src)] = item.reason
        unreadable = {item.path for item in bad}
        samples = [(path, label) for path, label in tree.samples if path not in unreadable]
        if split == "train":  # litdata shuffles chunks and a window of items: class-sorted chunks would give
            random.Random(0).shuffle(samples)  # batches of two or three classes, so the pack itself is shuffled
        if not samples:
            raise usage(f"no readable images under {src / split}")
        meta["splits"][split] = {"names": [os.path.relpath(p, src / split) for p, _ in samples],
                                 "labels": [label for _, label in samples]}
        if box_source is not None:
            meta["splits"][split]["boxes"], bad_boxes = pack_boxes(samples, classes, box_source, max_side)
            meta.setdefault("bad_boxes", []).extend(bad_boxes)
        target = pack_path(staging, split)
        index = pack_path(target, "index.json")
        if storage.indexed_items(index) == len(samples) if is_url(target) else Path(index).is_file():
            continue  # finished before an interruption
        start_method = multiprocessing.get_start_method(allow_none=True)  # litdata sets spawn for the process
        try:
            with ctrl_c_stops_packing(), storage.private_staging():
                litdata.optimize(partial(encode, max_side=max_side), [list(sample) for sample in samples],
                                 output_dir=target, num_workers=min(workers, len(samples)), chunk_bytes="64MB",
                                 reorder_files=False, use_checkpoint=True, keep_data_ordered=True,
                                 start_method="spawn", verbose=False)
        except KeyboardInterrupt:
            raise DeepconvError(f"interrupted (Ctrl-C) while packing {split}; run the same command again to continue "
                                f"(the finished chunks are kept in {staging})", INTERRUPTED) from None
        except Exception as e:  # noqa: BLE001 - litdata reports storage problems in many types
            raise failure(f"packing {src / split} into {target} failed: {type(e).__name__}: {e}") from None
        finally:
            multiprocessing.set_start_method(start_method, force=True)  # for the loaders that may follow in-process
        if is_url(target) and storage.indexed_items(index) != len(samples):  # checked before the metadata says done
            raise failure(f"{index} lists {storage.indexed_items(index)} of {len(samples)} images after the upload; "
                          "run the same command again")
    text = json.dumps(meta)
    if is_url(out):  # written last, in one request: a pack without it is incomplete to every reader
        storage.write_bytes(pack_path(out, META_FILE), text.encode())
    else:
        (Path(staging) / META_FILE).write_text(text)
        (Path(staging) / SOURCE_FILE).unlink()  # the fingerprint lives on in the metadata
        if Path(out).is_dir():
            Path(out).rmdir()
        os.replace(staging, out)
    return meta
