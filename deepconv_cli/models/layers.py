"""Small building blocks: the input normalisation every artefact carries, and AlexNet's LRN."""

import torch
from torch import nn

# AlexNet's LRN (Krizhevsky et al. 2012, section 3.3): b = a / (k + alpha * sum_{n neighbours} a^2)^beta.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0


def alexnet_lrn() -> nn.LocalResponseNorm:
    """torch's LRN divides alpha by the window size; multiply it back so the sum is weighted by AlexNet's alpha."""
    return nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA * LRN_SIZE, beta=LRN_BETA, k=LRN_K)


class InputNorm(nn.Module):
    """Maps a 0..255 RGB image (float or uint8, NCHW) to the network's input: (x - mean) * scale.

    The VGG paper's only preprocessing is subtracting the training set's mean RGB (scale 1). Imported
    torchvision/timm weights expect ImageNet mean/std normalisation of a 0..1 image, which is the same map with
    mean = 255 * mean01 and scale = 1 / (255 * std01). Keeping it inside the model means training, evaluation,
    prediction and every export apply exactly the same preprocessing.
    """

    def __init__(self, grey: bool = False) -> None:
        super().__init__()
        self.grey = grey  # single-channel networks (LeNet-5) see the luma of the normalised RGB image
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("scale", torch.ones(1, 3, 1, 1))

    def set(self, mean: list[float], scale: list[float] | None = None) -> None:
        self.mean.copy_(torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.scale.copy_(torch.tensor(scale or [1.0, 1.0, 1.0], dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.to(self.mean.dtype) - self.mean) * self.scale
        if self.grey:  # ITU-R BT.601 luma, as PIL's convert("L"); linear, so grey(x) - grey(mean)
            x = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        return x
