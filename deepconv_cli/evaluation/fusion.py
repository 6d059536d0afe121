"""Posterior averaging (VGG paper sections 4.3-4.4): over scales, over evaluation methods, over models.

Every combination in the paper is the plain mean of softmax posteriors: multi-scale averages the Q list,
`dense+multi-crop` averages the two methods (Table 5), an ensemble averages the models (Table 6).
"""

from collections.abc import Sequence

import torch

from deepconv_cli.evaluation.crops import CROP_METHODS, multiscale_crop_posteriors
from deepconv_cli.evaluation.dense import multiscale_dense_posteriors
from deepconv_cli.models.interface import Classifier

FUSED = "dense+multi-crop"
METHODS = ("dense", *CROP_METHODS, FUSED)


def components(method: str) -> list[str]:
    """The single methods a (possibly fused) method averages: dense+multi-crop -> [dense, multi-crop]."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method.split("+") if method == FUSED else [method]


def average(posteriors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The element-wise mean of equally shaped posterior tensors (fusion of methods or of models)."""
    return torch.stack(list(posteriors)).mean(dim=0)


def method_posteriors(
    model: Classifier, images: list[dict[int, torch.Tensor]], scales: list[int], method: str, flip: bool,
    batch_size: int, square: bool = False,
) -> torch.Tensor:
    """Posteriors (N, classes) of one single method (not fused), averaged over `scales`; `square`: crops come from
    the central Q x Q square (AlexNet's protocol, for networks trained on the central square)."""
    if method == "dense":
        return multiscale_dense_posteriors(model, images, scales, flip, batch_size)
    return multiscale_crop_posteriors(model, images, scales, method, flip, batch_size, square)
