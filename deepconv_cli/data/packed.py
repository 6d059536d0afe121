"""Packed data (written by data/packing.py, `deepconv data pack`): the datasets that read a pack back.

OUT/train and OUT/val are litdata datasets (index.json + chunk files) whose items are {"image": the file's bytes
(re-encoded with the shorter side capped when asked), "label": class index}; OUT/deepconv-packed.json holds the
class names, each split's relative file names and labels in item order (so evaluation, statistics and the exact
validation count need no chunk read), the bad-image verdicts of the scan made at pack time and, when the tree had
box annotations, each annotated item's boxes and size in the stored image's pixels.
"""

import io
import json
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from deepconv_cli.data import storage
from deepconv_cli.errors import DeepconvError, usage
from deepconv_cli.files import is_url

META_FILE = "deepconv-packed.json"
SPLITS = ("train", "val")

def is_packed(data_dir: str | Path) -> bool:
    """`data_dir` is a packed dataset (a URL, or a folder whose train/ holds litdata's index.json)."""
    return is_url(data_dir) or (Path(data_dir) / "train" / "index.json").is_file()


def pack_path(root: str, *parts: str) -> str:
    """ROOT/PART/... for a folder or a URL."""
    return "/".join([root.rstrip("/"), *parts]) if is_url(root) else str(Path(root, *parts))


def read_meta(root: str | Path) -> dict:
    """The pack's metadata (classes, names and labels per split, bad files); a one-line error when unreadable."""
    path = pack_path(str(root), META_FILE)
    try:
        meta = json.loads(storage.read_bytes(path) if is_url(root) else Path(path).read_text())
        assert all(split in meta["splits"] for split in SPLITS) and meta["classes"]
    except DeepconvError:  # object storage: the bucket, the credentials or the server, said in one line
        raise
    except Exception as e:  # noqa: BLE001 - missing file, bad JSON, no credentials, wrong content
        raise usage(f"{root} is not a complete packed dataset ({META_FILE}: {type(e).__name__}: {e})") from None
    if not is_url(root):  # a damaged chunk or index: one line now, not a traceback or a wrong hint minutes later
        from deepconv_cli.data.pack_guard import check_chunks

        check_chunks(root, meta, SPLITS)
    return meta


class PackedItems:
    """The images of one split by item index. The litdata reader opens on first use, in whichever process reads
    (loader and statistics workers included), and is never pickled: sending this to a process costs its URL."""

    def __init__(self, url: str) -> None:
        self.url, self._reader = url, None

    def __getstate__(self) -> dict:
        return {"url": self.url, "_reader": None}

    def item(self, i: int) -> dict:
        if self._reader is None:
            import litdata

            storage.quiet_download_crashes()
            self._reader = litdata.StreamingDataset(self.url, shuffle=False, drop_last=False,
                                                     cache_dir=storage.cache_dir(),
                                                     storage_options=storage.options())
            first = self._reader[i]  # the reader's cache exists from here on
            self._reader.on_demand_bytes = False  # remote: whole chunks into the cache, not 2 requests an item
            return first
        return self._reader[i]

    def open_lazily(self, i: int) -> Image.Image:
        """Item i as a lazily opened PIL image (what the folder path's loader returns for a file)."""
        return Image.open(io.BytesIO(self.item(i)["image"]))

    def open_rgb(self, i: int) -> Image.Image:
        from deepconv_cli.data.images import decode_rgb

        with self.open_lazily(i) as img:
            return decode_rgb(img)


class PackedSplit(Dataset):
    """One split of a pack as a map-style dataset: (transform(image), label); the litdata reader opens lazily, in
    whichever process reads (loader workers included). `samples` is [(relative name, label)] in item order."""

    def __init__(self, root: str | Path, split: str, meta: dict, transform=None) -> None:
        self.url = pack_path(str(root), split)
        self.samples = list(zip(meta["splits"][split]["names"], meta["splits"][split]["labels"]))
        self.targets = [label for _, label in self.samples]
        self.classes = meta["classes"]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.transform = transform
        self.skipped_links: list[str] = []
        self.items = PackedItems(self.url)

    def __len__(self) -> int:
        return len(self.samples)

    def open_lazily(self, i: int) -> Image.Image:
        return self.items.open_lazily(i)

    def open_rgb(self, i: int) -> Image.Image:
        return self.items.open_rgb(i)

    def __getitem__(self, i: int):
        img = self.open_lazily(i)
        return (self.transform(img) if self.transform else img), self.samples[i][1]

    def drop(self, paths: set[str]) -> None:
        """Nothing to drop: bad files were left out at pack time."""

    def empty_classes(self) -> list[str]:
        present = set(self.targets)
        return [name for i, name in enumerate(self.classes) if i not in present]


def packed_train_set(root: str | Path, transform, seed: int, drop_last: bool):
    """The training split (stored in a shuffled order) as a litdata StreamingDataset (data/packed_train.py):
    shuffled again, sharded over ranks and workers, its position resumable through StreamingDataLoader.state_dict;
    items are (transform(image), label), each item's random draws seeded by (seed, epoch, item)."""
    from deepconv_cli.data.packed_train import PackedTrain

    storage.quiet_download_crashes()
    return PackedTrain(pack_path(str(root), "train"), transform, seed, shuffle=True, drop_last=drop_last,
                       cache_dir=storage.cache_dir(), storage_options=storage.options())


def packed_stats(split: PackedSplit, max_images: int, workers: int = 0, **kwargs) -> dict:
    """Mean RGB and PCA eigenpairs exactly as data/stats.py computes them for the folder (the same images, evenly
    spaced over the sorted names, the same float64 sums), decoded by `workers` processes."""
    from deepconv_cli.data.stats import compute_stats

    index = {name: i for i, (name, _) in enumerate(split.samples)}
    return compute_stats(list(index), max_images, workers=workers, opener=split.items.open_rgb, keys=index,
                         **kwargs) | {"max_images": max_images}


def load_or_compute_stats(train: PackedSplit, run_dir: Path | None, max_images: int, workers: int = 0) -> dict:
    """`packed_stats`, cached next to a local pack (else in the run dir), keyed by the pack's index and limit."""
    import hashlib

    from deepconv_cli.data.stats import cached_stats

    index = pack_path(train.url, "index.json")
    key = hashlib.sha1(storage.read_bytes(index) if is_url(index) else Path(index).read_bytes()).hexdigest()
    candidates = ([] if is_url(train.url) else [Path(train.url) / "deepconv-stats.json"]) + (
        [run_dir / "packed-stats.json"] if run_dir else [])
    return cached_stats(candidates, key, max_images, lambda: packed_stats(train, max_images, workers))


def resumable_loader(dataset, **kwargs):
    """litdata's StreamingDataLoader (Lightning saves its `state_dict` in every checkpoint and restores it), mended
    for a loop that stops each epoch at the known number of batches: litdata clears its `restore` flag only when
    an epoch's iterator runs to its end, so after a mid-epoch resume the next epoch would replay the finished
    state and yield nothing. Here the flag holds for the first epoch after `load_state_dict` only. And the resumed
    epoch's iterator is created without drawing from the global torch generator (the interrupted run drew its
    base seed before the checkpoint), so dropout after a resume draws what it would have drawn."""
    import torch
    from litdata import StreamingDataLoader

    class ResumableLoader(StreamingDataLoader):
        _resumed = False

        def load_state_dict(self, obj: dict) -> None:
            super().load_state_dict(obj)
            self._resumed = False

        def __iter__(self):
            if self._resumed:
                self.restore = False
            self._resumed = bool(self.restore)
            batches = super().__iter__()
            if self._resumed:
                state = torch.get_rng_state()
                try:
                    first = next(batches)
                except StopIteration:
                    return
                torch.set_rng_state(state)
                yield first
            yield from batches

    return ResumableLoader(dataset, **kwargs)
