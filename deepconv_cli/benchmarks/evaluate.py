"""Evaluation benchmark: dense evaluation at three scales vs 150-crop multi-crop (5x5 grid, flips, 3 scales)."""

import numpy as np
import torch

from deepconv_cli.benchmarks.loader import natural_image
from deepconv_cli.benchmarks.report import Comparison, median
from deepconv_cli.evaluation.timing import time_dense_vs_multicrop
from deepconv_cli.models.registry import build

PAPER_SCALES = (256, 384, 512)  # Q for S in [256, 512] (section 4.3), scaled to other crop sizes below


def benchmark_evaluate(
    arch: str, width: float, crop: int, images: int, runs: int, batch_size: int, device: torch.device
) -> list[Comparison]:
    """Network time of both methods on the same `images` 4:3 pictures rescaled to the same three Q.

    Each run is one call of the evaluation package's `time_dense_vs_multicrop` (one warm-up image, then all
    images timed per method); the medians over runs are reported with the counted FLOP ratio.
    """
    scales = [round(q * crop / 224) for q in PAPER_SCALES]
    rng = np.random.default_rng(0)
    pictures = [natural_image(rng, round(scales[-1] * 4 / 3), scales[-1]) for _ in range(images)]
    torch.manual_seed(0)
    model = build(arch, num_classes=1000, width=width, crop_size=crop).to(device).eval()
    results = [time_dense_vs_multicrop(model, pictures, scales, batch_size) for _ in range(runs)]
    dense = median([r["dense_seconds"] for r in results]) / images
    crops = median([r["multicrop_seconds"] for r in results]) / images
    return [
        Comparison(
            name="evaluation", unit="s per image", ours=dense, baseline=crops,
            ours_label="dense, 3 scales, flip", baseline_label="150-crop multi-crop", higher_is_better=False,
            runs=runs, target="dense <= 0.25x multi-crop (speedup >= 4)",
            extra={"model": f"{arch} width {width:g}, {crop}px crops, scales {scales}, {device.type}",
                   "timed": "network passes only (images rescaled beforehand, the same for both)",
                   "counted FLOP ratio (multi-crop / dense)": round(results[0]["flop_ratio"], 2)},
        )
    ]
