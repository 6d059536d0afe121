"""Descriptor files: one safetensors file (descriptors, labels; paths, classes and settings as JSON metadata), built
from chunk files written atomically as they finish, so an interrupted run resumes without recomputing them."""

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from deepconv_cli.errors import failure, usage
from deepconv_cli.files import existing_file, reason, staged_file, write_text_atomically
from deepconv_cli.models.registry import get_spec

METADATA_KEY = "deepconv_features"
SETTINGS_FILE = "settings.json"


@dataclass
class Features:
    """Descriptors (N, D) float32 of N images, their labels (-1: none), paths relative to the data folder."""

    descriptors: torch.Tensor
    labels: torch.Tensor
    paths: list[str]
    classes: list[str]
    settings: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.descriptors.shape[1])


def net_name(arch: str) -> str:
    """The registry's display name (`VGG-D`, `GoogLeNet`); the stored name for an architecture not registered here."""
    try:
        return get_spec(arch).display_name
    except ValueError:
        return arch


def describe(feats: Features) -> str:
    """What made the descriptors, from the file's settings: `VGG-A w0.125 Q=32,36 average`, `raw pixels 8x8`, and
    the region of a file of boxes (`image+box`)."""
    s = feats.settings
    region = f" {s['region']}" if s.get("boxes") else ""
    if s.get("raw_pixels"):
        return f"raw pixels {s['raw_pixels']}x{s['raw_pixels']}{region}"
    nets = " + ".join(
        f"{net_name(n['arch'])} w{n['width']:g} Q={','.join(map(str, n['scales']))}" for n in s["networks"]
    )
    return f"{nets} {s['aggregate']}" + ("" if s.get("flip", True) else " no-flip") + region


def write_features(path: str | Path, feats: Features) -> None:
    """The whole file or nothing (staged next to `path`, then renamed)."""
    meta = {"paths": feats.paths, "classes": feats.classes, "settings": feats.settings}
    tensors = {"descriptors": feats.descriptors.float().contiguous(), "labels": feats.labels.long().contiguous()}
    with staged_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})


def read_features(path: str | Path) -> Features:
    """A file `deepconv features` wrote; anything else is a one-line error."""
    path = existing_file(path, "features file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not iterable
    except Exception as e:  # noqa: BLE001 - not safetensors, truncated, bad header ...
        raise failure(f"cannot read features file {path}: {reason(e, 120)}") from None
    if METADATA_KEY not in metadata or "descriptors" not in tensors or "labels" not in tensors:
        raise failure(f"{path} is not a deepconv features file (no '{METADATA_KEY}' metadata); see `deepconv features`")
    meta = json.loads(metadata[METADATA_KEY])
    feats = Features(tensors["descriptors"], tensors["labels"], meta["paths"], meta["classes"], meta["settings"])
    if feats.descriptors.ndim != 2 or not len(feats.paths) == feats.descriptors.shape[0] == feats.labels.shape[0]:
        raise failure(f"{path} is damaged: descriptor, label and path counts differ")
    return feats


def fingerprint(settings: dict, paths: list[str]) -> dict:
    """What a chunk folder belongs to: the settings and a hash of the image list (order included)."""
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()
    return {"settings": settings, "images": len(paths), "paths_sha256": digest}


class ChunkStore:
    """`OUT.parts/chunk-00000.safetensors ...`: finished chunks of one run, kept until the final file is written."""

    def __init__(self, out: Path, print_: dict, chunk_size: int) -> None:
        self.dir = out.with_name(out.name + ".parts")
        self.print_, self.chunk_size = print_, chunk_size

    def open(self) -> None:
        """Create the folder, or check that an existing one belongs to this run (then its chunks are reused)."""
        settings = self.dir / SETTINGS_FILE
        if self.dir.exists() and not any(self.dir.glob("chunk-*.safetensors")):
            shutil.rmtree(self.dir)  # nothing to resume: start afresh whatever run left it
        if self.dir.exists():
            try:
                found = json.loads(settings.read_text())
            except (OSError, ValueError):
                found = None
            if found != {**self.print_, "chunk_size": self.chunk_size}:
                raise usage(
                    f"{self.dir} holds chunks of a different features run (other checkpoints, settings or images); "
                    "delete it, or re-run with the same options to resume"
                )
            for stale in self.dir.glob(".*.tmp"):  # a run killed while writing a chunk
                stale.unlink(missing_ok=True)
        else:
            write_text_atomically(settings, json.dumps({**self.print_, "chunk_size": self.chunk_size}, indent=1))

    def path(self, k: int) -> Path:
        return self.dir / f"chunk-{k:05d}.safetensors"

    def done(self, k: int) -> bool:
        return self.path(k).is_file()

    def write(self, k: int, indices: torch.Tensor, descriptors: torch.Tensor) -> Path:
        with staged_file(self.path(k)) as tmp:
            save_file({"indices": indices.long().contiguous(), "descriptors": descriptors.float().contiguous()},
                      str(tmp))
        return self.path(k)

    def gather(self, chunks: int, total: int) -> torch.Tensor:
        """(total, D): every chunk read back and placed by image index; each image must appear exactly once."""
        out: torch.Tensor | None = None
        seen = torch.zeros(total, dtype=torch.long)
        for k in range(chunks):
            try:
                with safe_open(str(self.path(k)), framework="pt") as f:
                    indices, descriptors = f.get_tensor("indices"), f.get_tensor("descriptors")
            except Exception as e:  # noqa: BLE001
                raise failure(f"cannot read chunk {self.path(k)} ({reason(e, 80)}); delete it and re-run") from None
            if out is None:
                out = torch.zeros(total, descriptors.shape[1])
            out[indices] = descriptors
            seen.index_add_(0, indices, torch.ones_like(indices))
        if out is None or not bool((seen == 1).all()):
            raise failure(f"the chunks in {self.dir} do not cover every image exactly once; delete the folder")
        return out

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
