"""AlexNet's per-pixel mean image of a training set ("subtracting the mean activity over the training set from
each pixel", AlexNet section 2), computed once and cached next to the data.

Each image is prepared as AlexNet prepares it before cropping: rescaled so that its shorter side is S, then the
central S x S square; the mean image is the per-pixel average (0..255, float32, shape (3, S, S)) of those squares
over up to `max_images` training images, evenly spaced over the sorted file list (deterministic). The network
subtracts it from its input (`InputNorm`), resampled to the input's size.
"""

import zipfile
from pathlib import Path

import numpy as np
from rich.progress import Progress

from deepconv_cli.data.images import UnreadableImage, open_rgb
from deepconv_cli.data.scan import file_signature
from deepconv_cli.data.stats import evenly_spaced
from deepconv_cli.data.transforms import resized_crop
from deepconv_cli.errors import failure
from deepconv_cli.files import staged_file

MEAN_IMAGE_FILE = ".deepconv-mean-image-{size}.npz"


def central_square(path: str, size: int) -> np.ndarray:
    """The central size x size square of the image rescaled to shorter side `size`, float64 (3, size, size)."""
    img = open_rgb(path)
    w, h = img.size
    sw, sh = w * size / min(w, h), h * size / min(w, h)
    square = resized_crop(img, size, size, (sw - size) / 2, (sh - size) / 2)
    return np.asarray(square, dtype=np.float64).transpose(2, 0, 1)


def compute_mean_image(files: list[str], size: int, max_images: int = 10000, progress: bool = True) -> np.ndarray:
    """The per-pixel mean (3, size, size) in 0..255 of the images' central squares at shorter side `size`."""
    chosen = evenly_spaced(sorted(files), max_images)
    if not chosen:
        raise ValueError("no images to compute a mean image from")
    total = np.zeros((3, size, size))
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"mean image {size}x{size}", total=len(chosen))
        for path in chosen:
            try:
                total += central_square(path, size)
            except UnreadableImage as e:
                raise failure(f"cannot read image {path}: {e} (training skips such files with "
                              "--data.skip_bad_images)") from None
            bar.advance(task)
    return (total / len(chosen)).astype(np.float32)


def load_or_compute_mean_image(files: list[str], size: int, folder: Path, fallback_dir: Path | None,
                               max_images: int) -> np.ndarray:
    """The mean image from the cache in `folder` (or `fallback_dir` when `folder` is read-only) when it was made
    from these very files (names, sizes, modification times) and settings; else computed and cached."""
    name = MEAN_IMAGE_FILE.format(size=size)
    candidates = [folder / name] + ([fallback_dir / name] if fallback_dir else [])
    key = f"{file_signature(files)} {max_images}"
    for path in candidates:
        try:
            with np.load(path) as cached:
                if str(cached["key"]) == key:
                    return cached["mean"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # absent or damaged: recompute
            continue
    mean = compute_mean_image(files, size, max_images)
    for path in candidates:
        try:
            with staged_file(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, mean=mean, key=np.array(key))
            break
        except OSError:
            continue
    return mean
