"""One `deepconv features` run: checkpoints (or raw pixels) and an image folder in, a descriptor file out, chunk by
chunk, resuming after an interruption from the chunks already written."""

import math
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.utils.data import DataLoader

from deepconv_cli import __version__
from deepconv_cli.errors import failure, usage
from deepconv_cli.features.descriptors import AGGREGATES, fused_descriptors, raw_pixel_descriptors, stacked
from deepconv_cli.features.images import ImageList, ScaledImages, keep_as_list, list_images
from deepconv_cli.features.store import ChunkStore, Features, fingerprint, write_features
from deepconv_cli.models.checkpoint import load_model
from deepconv_cli.training.resources import pick_device, set_threads

ChunkHook = Callable[[int, Path], None]
REGIONS = {"image": ("image",), "box": ("box",), "image+box": ("image", "box")}  # Table 12's settings (i), -, (ii)


def load_networks(ckpts: list[str], scales: list[int] | None, device: torch.device) -> tuple[list, list[dict]]:
    """[(model on device, its scales)] and, per checkpoint, what the settings record about it."""
    models, described = [], []
    for ckpt in ckpts:
        model, meta = load_model(ckpt)
        qs = sorted(set(scales)) if scales else meta.default_test_scales()
        if min(qs) < meta.crop_size:
            raise usage(f"scale Q={min(qs)} is smaller than {ckpt}'s crop size {meta.crop_size}")
        models.append((model.to(device), qs))
        described.append({"ckpt": str(Path(ckpt).resolve()), "arch": meta.arch, "width": meta.width,
                          "crop_size": meta.crop_size, "scales": qs,
                          "train_s": f"{meta.s_min}" if meta.s_min == meta.s_max else f"{meta.s_min}-{meta.s_max}"})
    return models, described


def extract_features(
    data: str | Path,
    out: str | Path,
    ckpts: list[str] | None = None,
    scales: list[int] | None = None,
    aggregate: str = "average",
    flip: bool = True,
    raw_pixels: int = 0,
    batch_size: int = 32,
    chunk_size: int = 256,
    num_workers: int = 0,
    device: str = "auto",
    bf16: bool = False,
    progress: bool = True,
    on_chunk: ChunkHook | None = None,
    boxes: str | Path | None = None,
    region: str = "image",
) -> tuple[Features, int]:
    """Write the descriptor file `out`; returns its Features and how many chunks this call computed.

    With `boxes` (a CSV of people, data/actions.py) there is one descriptor per box: of the whole image, of the
    box's crop, or of both stacked (`region`: image, box, image+box).

    `on_chunk(k, chunk_file)` runs after chunk k is written (tests use it to interrupt a run).
    """
    ckpts = ckpts or []
    if bool(ckpts) == bool(raw_pixels):
        raise usage("give --ckpt (one or more networks) or --raw_pixels SIZE (the pixel baseline), not both")
    if aggregate not in AGGREGATES:
        raise usage(f"--aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    for name, value, least in (("--batch_size", batch_size, 1), ("--chunk_size", chunk_size, 1),
                               ("--num_workers", num_workers, 0), ("--raw_pixels", raw_pixels, 0)):
        if value < least:
            raise usage(f"{name} must be at least {least}, got {value}")
    if region not in REGIONS:
        raise usage(f"--region must be one of {', '.join(REGIONS)}, got {region!r}")
    if region != "image" and not boxes:
        raise usage(f"--region {region} needs --boxes CSV (the people's boxes, `deepconv data voc --task action`)")
    out = Path(out)
    if out.is_dir():
        raise usage(f"--out is a folder: {out}")
    images = list_images(data, boxes)
    set_threads(num_workers)  # the decoding workers keep their cores (training/resources.py)
    dev = pick_device(device)
    models, described = load_networks(ckpts, scales, dev) if ckpts else ([], [])
    settings = {"networks": described, "aggregate": aggregate, "flip": flip, "raw_pixels": raw_pixels, "bf16": bf16,
                "data": str(images.root.resolve()), "version": __version__}
    if boxes:
        settings.update(boxes=str(Path(boxes).resolve()), region=region)
    listing = images.paths if images.boxes is None else [f"{p} {b}" for p, b in zip(images.paths, images.boxes)]
    store = ChunkStore(out, fingerprint({k: v for k, v in settings.items() if k != "version"}, listing), chunk_size)
    store.open()
    chunks = math.ceil(len(images.paths) / chunk_size)
    todo = [k for k in range(chunks) if not store.done(k)]
    all_scales = sorted({q for _, qs in models for q in qs})
    columns = (TextColumn("descriptors"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task("images", total=len(images.paths), completed=len(images.paths) - _count(todo, images,
                                                                                                     chunk_size))
        for k in todo:
            indices = list(range(k * chunk_size, min((k + 1) * chunk_size, len(images.paths))))
            descriptors = _chunk(images, indices, models, all_scales, raw_pixels, aggregate, flip, batch_size,
                                 num_workers, bf16, REGIONS[region])
            path = store.write(k, torch.tensor(indices), descriptors)
            bar.advance(task, len(indices))
            if on_chunk:
                on_chunk(k, path)
    feats = Features(store.gather(chunks, len(images.paths)), torch.tensor(images.labels), images.paths,
                     images.classes, settings)
    feats.settings["dim"] = feats.dim
    write_features(out, feats)
    store.remove()
    return feats, len(todo)


def _count(todo: list[int], images: ImageList, chunk_size: int) -> int:
    return sum(min(chunk_size, len(images.paths) - k * chunk_size) for k in todo)


def _chunk(images: ImageList, indices: list[int], models: list, scales: list[int], raw_pixels: int, aggregate: str,
           flip: bool, batch_size: int, num_workers: int, bf16: bool, regions: tuple[str, ...]) -> torch.Tensor:
    """Descriptors of the images (or boxes) `indices`, in that order; the regions' descriptors stacked."""
    loader = DataLoader(ScaledImages(images, indices, scales, raw_pixels, regions), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=keep_as_list)
    decoded: dict[int, list[dict[int, torch.Tensor]]] = {}
    for batch in loader:
        for index, views in batch:
            if isinstance(views, str):
                raise failure(views)
            decoded[index] = views
    parts = []
    for r, region in enumerate(regions):
        keys = [images.file(i) if region == "image" else i for i in indices]  # an image's people: one computation
        first = {key: k for k, key in reversed(list(enumerate(keys)))}  # each key's first position
        views = [decoded[indices[k]][r] for k in first.values()]
        if raw_pixels:
            unique = raw_pixel_descriptors([v[0] for v in views])
        else:
            unique = fused_descriptors(models, views, aggregate, flip, batch_size, bf16)
        slot = {key: n for n, key in enumerate(first)}
        parts.append(unique[[slot[key] for key in keys]])
    return stacked(parts)
