"""One evaluation run: checkpoints and a val/ tree in, top-1/top-5 error rows out, every image counted once.

Images are decoded and rescaled to every test scale Q in loader workers; each chunk of images then goes through
every model and every single method, the posteriors are fused in memory and the torchmetrics accuracies of
each row (model x method, plus the ensemble) are updated, so nothing per image is kept beyond one chunk. With
`devices` > 1 the same chunks run in N processes over shards of the images (evaluation/sharded.py), whose
per-image posteriors are gathered in dataset order and scored here the same way.
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text
from torch.utils.data import DataLoader, Dataset

from deepconv_cli.data.folder import ImageTree, check_tree, warn_skipped_links
from deepconv_cli.data.images import open_rgb
from deepconv_cli.data.packed import PackedSplit, is_packed, read_meta
from deepconv_cli.data.scan import SCAN_FILE, scan_images
from deepconv_cli.errors import failure, usage
from deepconv_cli.evaluation.dense import rescale_shorter, to_uint8_tensor
from deepconv_cli.evaluation.fusion import FUSED, average, components, method_posteriors
from deepconv_cli.evaluation.rows import make_rows, update_rows
from deepconv_cli.models.checkpoint import ModelMeta, load_model
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.precision import ALIASES, autocast, prepare_model, resolve_precision
from deepconv_cli.training.resources import pick_device


@dataclass
class Member:
    """One checkpoint of the evaluation: its network, metadata and test scales."""

    path: Path
    model: Classifier
    meta: ModelMeta
    scales: list[int]

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}" if self.path.parent.name else self.path.stem

    @property
    def train_s(self) -> str:
        return str(self.meta.s_min) if self.meta.s_min == self.meta.s_max else f"{self.meta.s_min}-{self.meta.s_max}"


def resolve_val_dir(data: str | Path) -> Path:
    """`--data` may be the val/ folder itself or a dataset root that contains val/."""
    root = Path(data)
    if not root.exists():
        raise usage(f"data folder not found: {root}")
    return root / "val" if (root / "val").is_dir() else root


def load_members(ckpts: list[str], scales: list[int] | None, device: torch.device) -> list[Member]:
    """Load every checkpoint, check they classify the same classes, and fix each one's test scales."""
    members = []
    for ckpt in ckpts:
        model, meta = load_model(ckpt)
        qs = sorted(set(scales)) if scales else meta.default_test_scales()
        if min(qs) < meta.crop_size:
            raise usage(f"test scale Q={min(qs)} is smaller than {ckpt}'s crop size {meta.crop_size}")
        members.append(Member(Path(ckpt), prepare_model(model.to(device), device), meta, qs))
    first = members[0]
    for m in members[1:]:
        if m.meta.classes != first.meta.classes:
            raise usage(f"{m.path} and {first.path} classify different classes; an ensemble needs the same classes")
    return members


def check_classes(val_dir: Path, classes: list[str], found: list[str] | None = None) -> None:
    """The val folder's class folders (or a pack's `found` classes) must be exactly the checkpoint's classes, in the
    same (sorted) order."""
    found = found if found is not None else check_tree(val_dir, "validation")
    if found != classes:
        differing = sorted(set(found) ^ set(classes))
        detail = f"differing: {', '.join(differing[:5])}" if differing else "same names, different order"
        raise usage(
            f"{val_dir} has {len(found)} class folders but the checkpoint was trained on {len(classes)} classes "
            f"({detail})"
        )


class RescaledImages(Dataset):
    """Image i of the tree, decoded once and rescaled to every test scale: (i, label, {Q: uint8 CHW} or error)."""

    def __init__(self, tree: ImageTree, indices: list[int], scales: list[int]) -> None:
        self.tree, self.indices, self.scales = tree, indices, scales

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[int, int, dict[int, torch.Tensor] | str]:
        path, label = self.tree.samples[self.indices[i]]
        try:
            # the one reader: errors of any kind arrive as UnreadableImage (an OSError)
            img = self.tree.open_rgb(self.indices[i]) if isinstance(self.tree, PackedSplit) else open_rgb(path)
        except OSError as e:  # corrupt or truncated file: reported once, by the main process
            return i, label, f"cannot read image {path}: {e}"
        return i, label, {q: to_uint8_tensor(rescale_shorter(img, q)) for q in self.scales}


def keep_as_list(batch: list) -> list:
    """Collate that keeps images of different sizes apart (they are bucketed by shape later)."""
    return batch


class ImagesPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f} images/s" if task.speed else "", style="progress.data.speed")


def spaced_indices(total: int, limit: int) -> list[int]:
    """All indices, or `limit` of them evenly spaced over the sorted tree (so every class is represented)."""
    if limit <= 0 or limit >= total:
        return list(range(total))
    return sorted({round(i * (total - 1) / max(1, limit - 1)) for i in range(limit)})


def chunk_posteriors(
    members: list[Member],
    images: list[dict[int, torch.Tensor]],
    method: str,
    flip: bool = True,
    batch_size: int = 32,
    seconds: dict[tuple[int, str], float] | None = None,
    precision: str = "32-true",
) -> dict[tuple[str, str], torch.Tensor]:
    """Posteriors (N, classes, on CPU) of a chunk of images for every row: keys (model index or "ensemble", method).

    Each single method runs once per model (its forward time added to `seconds[model index, method]`); the
    fused method and the ensemble are averages of those posteriors. `precision`: "bf16-mixed" runs the networks under
    bf16 autocast, "32-true" in full precision (posteriors are fp32 either way).
    """
    singles = components(method)
    out: dict[tuple[str, str], torch.Tensor] = {}
    for i, m in enumerate(members):
        for s in singles:
            start = time.perf_counter()
            with autocast(next(m.model.parameters()).device, precision):
                out[str(i), s] = method_posteriors(m.model, images, m.scales, s, flip, batch_size,
                                                   m.meta.center_square).cpu()  # waits for GPU
            if seconds is not None:
                seconds[i, s] = seconds.get((i, s), 0.0) + time.perf_counter() - start
        if method == FUSED:
            out[str(i), FUSED] = average([out[str(i), s] for s in singles])
    if len(members) > 1:
        for name in [*singles, FUSED] if method == FUSED else singles:
            out["ensemble", name] = average([out[str(i), name] for i in range(len(members))])
    return out


@dataclass
class Job:
    """What every evaluating process needs (picklable: `--devices N` sends it to N processes)."""

    ckpts: list[str]
    scales: list[int] | None
    method: str
    flip: bool
    batch_size: int
    num_workers: int
    precision: str
    tree: ImageTree
    indices: list[int]

    def targets(self) -> torch.Tensor:
        """The labels of the evaluated images, in dataset order (position i is image `indices[i]`)."""
        return torch.tensor([self.tree.samples[i][1] for i in self.indices], dtype=torch.long)


def run_chunks(members: list[Member], job: Job, consume, sampler=None, progress: bool = True) -> dict:
    """Evaluate the job's images (those `sampler` picks, or all) chunk by chunk; `consume(positions, target,
    posteriors by row key)` receives each chunk. Returns the forward seconds per (model index, single method)."""
    dev = next(members[0].model.parameters()).device
    dataset = RescaledImages(job.tree, job.indices, sorted({q for m in members for q in m.scales}))
    loader = DataLoader(dataset, batch_size=job.batch_size, sampler=sampler, num_workers=job.num_workers,
                        collate_fn=keep_as_list, pin_memory=dev.type == "cuda",
                        prefetch_factor=4 if job.num_workers else None)
    seconds = {(i, s): 0.0 for i in range(len(members)) for s in components(job.method)}
    columns = (TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), ImagesPerSecond(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task("images", total=len(sampler) if sampler is not None else len(dataset))
        for chunk in loader:
            for _, _, views in chunk:
                if isinstance(views, str):
                    raise failure(f"{views} (--skip_bad_images leaves such files out)")
            ids = torch.tensor([i for i, _, _ in chunk])
            target = torch.tensor([label for _, label, _ in chunk])
            images = [views for _, _, views in chunk]
            consume(ids, target, chunk_posteriors(members, images, job.method, job.flip, job.batch_size, seconds,
                                                  job.precision))
            bar.advance(task, len(chunk))
    return seconds


def evaluate(
    ckpts: list[str],
    data: str | Path,
    method: str = "dense",
    scales: list[int] | None = None,
    flip: bool = True,
    limit: int = 0,
    batch_size: int = 32,
    num_workers: int = 2,
    device: str = "auto",
    progress: bool = True,
    skip_bad_images: bool = False,
    precision: str = "auto",
    devices: int = 1,
) -> list[dict]:
    """Top-1/top-5 error (percent) of each checkpoint and of their ensemble on a val/ tree; one dict per row.

    `precision`: auto (bf16 autocast on CUDA where supported, fp32 elsewhere), bf16 or fp32. `devices` > 1:
    that many processes each evaluate a share of the images (evaluation/sharded.py); the rows are the same.
    """
    components(method)  # validates the name before any file is read
    if not ckpts:
        raise usage("give at least one --ckpt")
    if batch_size < 1:
        raise usage(f"--batch_size must be at least 1, got {batch_size}")
    if num_workers < 0:
        raise usage(f"--num_workers must be 0 or more, got {num_workers}")
    if devices > 1:
        from deepconv_cli.evaluation.sharded import device_kind

        dev = torch.device(device_kind(device, devices))  # the processes take cuda:0..N-1, or the CPU
    elif devices < 1:
        raise usage(f"--devices must be at least 1, got {devices}")
    pack = read_meta(data) if is_packed(data) else None  # data/packed.py: `deepconv data pack`'s output
    val_dir = Path(data) if pack else resolve_val_dir(data)
    if not pack:
        check_tree(val_dir, "validation")
    if devices == 1:
        dev = pick_device(device)
    if precision not in ("auto", *ALIASES):
        raise usage(f"unknown precision {precision!r}; choose one of auto, {', '.join(ALIASES)}")
    cuda = dev.type == "cuda"
    precision = resolve_precision(precision, dev.type, cuda, cuda and torch.cuda.is_bf16_supported())
    members = load_members(ckpts, scales, dev if devices == 1 else torch.device("cpu"))  # checked once here
    check_classes(val_dir, members[0].meta.classes, pack["classes"] if pack else None)
    tree = PackedSplit(data, "val", pack) if pack else ImageTree(val_dir)
    warn_skipped_links(tree.skipped_links)
    if skip_bad_images and not pack:  # a pack holds no bad files (left out when packed)
        _, bad = scan_images([path for path, _ in tree.samples], [val_dir / SCAN_FILE], progress=progress)
        tree.drop({item.path for item in bad})
        if bad:
            print(f"skipping {len(bad)} unreadable image file(s) under {val_dir} (--skip_bad_images)", file=sys.stderr)
    indices = spaced_indices(len(tree), limit)
    if not indices:
        raise usage(f"no images found under {val_dir}")
    job = Job(ckpts, scales, method, flip, batch_size, num_workers, precision, tree, indices)
    if devices > 1:
        from deepconv_cli.evaluation.sharded import evaluate_sharded

        del members
        return evaluate_sharded(job, devices, dev.type, (load_members, run_chunks), progress)
    rows = make_rows(members, method)
    seen = torch.zeros(len(indices), dtype=torch.long)

    def consume(ids: torch.Tensor, target: torch.Tensor, posteriors: dict) -> None:
        seen.index_add_(0, ids, torch.ones_like(ids))
        update_rows(rows, posteriors, target)

    seconds = run_chunks(members, job, consume, progress=progress)
    if not bool((seen == 1).all()):
        raise failure(
            f"evaluated {int((seen > 0).sum())} distinct images ({int(seen.sum())} in all) but the set has "
            f"{len(indices)}: every image must be counted exactly once"
        )
    return [row.result(flip, len(indices), seconds) for row in rows.values()]
