"""The loader benchmark's training transform (`deepconv benchmark loader`: one worker, 64 JPEGs of 500x375 at quality
90, S in [256, 512], crop 224) with each JPEG decoder behind the same crop code: simplejpeg and PIL (both decode
at 1/2..1/8 size in the DCT where the crop allows), TorchCodec and torchvision.io (full size: they have no
reduced-size decode). Decoders that are not installed are left out. Usage: python tools/compare_jpeg_decoders.py
[RUNS] [FOLDER]"""

import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from deepconv_cli.benchmarks.loader import _epoch, make_jpegs
from deepconv_cli.data import transforms
from deepconv_cli.data.folder import ImageTree
from deepconv_cli.data.transforms import train_transform


def full_size(decode):
    """decode_uint8 through `decode` (1-D uint8 bytes -> uint8 CHW) at full size."""

    def decode_uint8(img, target_short, data=None):
        data = Path(img.filename).read_bytes() if data is None else data
        img.close()
        return decode(torch.frombuffer(bytearray(data), dtype=torch.uint8)), 1.0

    return decode_uint8


def decoders() -> dict:
    found = {"simplejpeg": (transforms.decode_uint8, transforms.simplejpeg), "PIL": (transforms.decode_uint8, None)}
    try:
        from torchcodec.decoders import decode_jpeg as torchcodec_decode

        found["torchcodec"] = (full_size(torchcodec_decode), transforms.simplejpeg)
    except ImportError:
        pass
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
    from torchvision.io import decode_jpeg as torchvision_decode

    found["torchvision.io"] = (full_size(torchvision_decode), transforms.simplejpeg)
    return found


def main(runs: int = 5, folder: str = "/tmp/deepconv-jpegs") -> None:
    tree = ImageTree(make_jpegs(Path(folder), 64), train_transform(256, 512, 224))
    tree.samples = tree.samples[:64]
    torch.set_num_threads(1)
    variants = decoders()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):  # interleaved, so load from other processes hits every decoder alike
        for name, (decode_uint8, simplejpeg) in variants.items():
            transforms.decode_uint8, transforms.simplejpeg = decode_uint8, simplejpeg
            start = time.perf_counter()
            _epoch(tree, 32)
            times[name].append(time.perf_counter() - start)
    for name, seconds in times.items():
        print(f"{name:15s} {len(tree.samples) / statistics.median(seconds):7.1f} img/s (median of {runs})")


if __name__ == "__main__":
    main(*(int(a) if i == 0 else a for i, a in enumerate(sys.argv[1:])))
