"""Per-stage cost of the training loader on one core: read, header, JPEG decode (DCT downscale), resize, crop, collate.

Each stage runs the same calls the loader makes (`ScaleJitterCrop`'s S and window, the loader's `decode_uint8`
(simplejpeg or PIL's draft decode), its `crop_box` and torch's antialiased bilinear resize of that box, the flip,
the batch stack), timed
separately over the same images, so the sum is one worker's time per image and each stage's share shows where
a 16-core loader's time goes against the >= 8,000 images/s (500 per core) target.
"""

import io
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from deepconv_cli.benchmarks.report import Comparison, median
from deepconv_cli.data.transforms import ScaleJitterCrop, crop_box, decode_uint8, simplejpeg

STAGES = ("read file", "parse header", "decode (DCT downscale)", "resize box to crop", "flip", "collate")
TARGET_PER_CORE = 8000 / 16


def _one_pass(files: list[Path], jitter: ScaleJitterCrop, batch_size: int) -> dict[str, float]:
    """Seconds spent in each stage over all files (one pass, one thread)."""
    spent = dict.fromkeys(STAGES, 0.0)
    crops: list[torch.Tensor] = []
    random.seed(0)

    def clock(stage: str, start: float) -> float:
        now = time.perf_counter()
        spent[stage] += now - start
        return now

    for path in files:
        t = time.perf_counter()
        data = path.read_bytes()
        t = clock("read file", t)
        img = Image.open(io.BytesIO(data))
        w, h = img.size
        s, left, top = jitter.params((w, h))
        t = clock("parse header", t)
        x, decoded = decode_uint8(img, s, data)  # the loader's decoder, from the bytes already read
        t = clock("decode (DCT downscale)", t)
        x0, y0, side = crop_box(*x.shape[1:], decoded * min(w, h) / s, left, top, jitter.crop)  # the loader's box
        crop = F.interpolate(x[None, :, y0 : y0 + side, x0 : x0 + side], size=(jitter.crop,) * 2, mode="bilinear",
                             antialias=True)[0]
        t = clock("resize box to crop", t)
        if random.random() < 0.5:
            crop = torch.flip(crop, dims=[2])
        t = clock("flip", t)
        crops.append(crop)
        if len(crops) == batch_size:
            torch.stack(crops)
            crops.clear()
            clock("collate", t)
    return spent


def benchmark_stages(files: list[Path], runs: int, s_min: int, s_max: int, crop: int, batch_size: int) -> Comparison:
    """Median per-stage milliseconds per image and the resulting images/s of one core against the target."""
    jitter = ScaleJitterCrop(s_min, s_max, crop, as_tensor=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like a DataLoader worker
    try:
        _one_pass(files[:4], jitter, batch_size)  # warm-up: imports, allocator, page cache
        passes = [_one_pass(files, jitter, batch_size) for _ in range(runs)]
    finally:
        torch.set_num_threads(threads)
    ms = {stage: 1000 * median([p[stage] for p in passes]) / len(files) for stage in STAGES}
    total = sum(ms.values())
    extra = {f"{stage} (ms/image)": f"{value:.3f} ({100 * value / total:.0f}%)" for stage, value in ms.items()}
    extra["jpeg decoder"] = "simplejpeg (libjpeg-turbo)" if simplejpeg is not None else "PIL (libjpeg-turbo)"
    extra["16 cores, if they scale linearly (unmeasured here)"] = f"{16 * 1000 / total:,.0f} images/s"
    return Comparison(
        name="loader stages", unit="images/s per core", ours=1000 / total, baseline=TARGET_PER_CORE,
        ours_label="sum of the stages", baseline_label="8,000 img/s over 16 cores", higher_is_better=True,
        runs=runs, target=">= 1.0x (the loader never starves a 5,000 img/s step)", extra=extra,
    )
