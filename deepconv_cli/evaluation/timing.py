"""Cost of dense vs multi-crop evaluation on the same images: wall time and counted FLOPs (VGG paper section 3.2).

The paper argues dense evaluation is cheaper than 150 crops per image (its multi-crop costs about 5x the FLOPs
at three scales); `time_dense_vs_multicrop` measures both on a given model and device so the claim can be
checked, and `deepconv benchmark` reports it.
"""

import time
from functools import partial

import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from deepconv_cli.evaluation.crops import multiscale_crop_posteriors
from deepconv_cli.evaluation.dense import multiscale_dense_posteriors, rescale_shorter, to_uint8_tensor
from deepconv_cli.models.interface import Classifier


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def time_dense_vs_multicrop(
    model: Classifier, images: list[Image.Image], scales: list[int], batch_size: int = 32, flip: bool = True
) -> dict:
    """Seconds and GFLOPs of dense (2 views per scale with flips) vs multi-crop (50 crops per scale) evaluation.

    The images are rescaled to every Q before the clock starts; each method runs once untimed on the first image
    (warm-up) and once timed over all of them; the FLOPs are counted on the first image. `model` is used on its
    own device, in eval mode.
    """
    if not images:
        raise ValueError("time_dense_vs_multicrop needs at least one image")
    model.eval()
    rescaled = [{q: to_uint8_tensor(rescale_shorter(img, q)) for q in scales} for img in images]

    def dense(batch: list[dict[int, torch.Tensor]]) -> torch.Tensor:
        return multiscale_dense_posteriors(model, batch, scales, flip, batch_size).cpu()  # .cpu() waits for the GPU

    def multicrop(batch: list[dict[int, torch.Tensor]]) -> torch.Tensor:
        return multiscale_crop_posteriors(model, batch, scales, "multi-crop", flip, batch_size).cpu()

    result: dict = {"images": len(images), "scales": list(scales), "flip": flip, "batch_size": batch_size,
                    "dense_views_per_image": len(scales) * (2 if flip else 1),
                    "crops_per_image": len(scales) * (50 if flip else 25)}
    for name, fn in (("dense", dense), ("multicrop", multicrop)):
        result[f"{name}_gflops_per_image"] = _flops(partial(fn, rescaled[:1])) / 1e9
        start = time.perf_counter()
        fn(rescaled)
        result[f"{name}_seconds"] = time.perf_counter() - start
        result[f"{name}_images_per_second"] = len(images) / result[f"{name}_seconds"]
    result["time_ratio"] = result["multicrop_seconds"] / result["dense_seconds"]
    result["flop_ratio"] = result["multicrop_gflops_per_image"] / result["dense_gflops_per_image"]
    return result
