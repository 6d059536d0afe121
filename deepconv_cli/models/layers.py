"""Small building blocks: the input normalisation every artefact carries, AlexNet's LRN, and where a trunk applies
a normalisation layer straight to a convolution's output."""

from collections.abc import Iterator

import torch
from torch import nn

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm,
         nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def conv_norm_pairs(module: nn.Module) -> Iterator[tuple[nn.Sequential, int]]:
    """(sequential, i) wherever `sequential[i]` is a convolution and `sequential[i + 1]` a norm layer: inside an
    nn.Sequential the norm layer certainly reads that convolution's output and nothing else (a batch norm there can
    be folded into the convolution; deepening copies it with the convolution)."""
    for seq in module.modules():
        if isinstance(seq, nn.Sequential):
            children = list(seq)
            for i, (a, b) in enumerate(zip(children, children[1:])):
                if isinstance(a, nn.Conv2d) and isinstance(b, NORMS):
                    yield seq, i

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

    AlexNet's option (`data.mean_image`): a per-pixel mean image (1, 3, S, S) replaces the mean RGB. The network
    does not know where a crop came from, so the mean image is resampled (bilinear) to the input's size: exact
    for an S x S input, a 224/256 rescaling of it for a 224 crop, where Caffe cut it at the crop's offset.
    """

    def __init__(self, grey: bool = False) -> None:
        super().__init__()
        self.grey = grey  # single-channel networks (LeNet-5) see the luma of the normalised RGB image
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("scale", torch.ones(1, 3, 1, 1))
        self.register_buffer("mean_image", torch.zeros(1, 3, 0, 0))  # empty: the mean RGB is used
        self.register_load_state_dict_pre_hook(_adopt_mean_image)

    def set(self, mean: list[float], scale: list[float] | None = None) -> None:
        self.mean.copy_(torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.scale.copy_(torch.tensor(scale or [1.0, 1.0, 1.0], dtype=torch.float32).view(1, 3, 1, 1))

    def set_mean_image(self, image: torch.Tensor | None) -> None:
        """Use a (3, S, S) mean image (0..255) instead of the mean RGB; an empty one (0, 0) turns it off."""
        if image is None:
            image = torch.zeros(3, 0, 0)
        self.mean_image = image.to(dtype=torch.float32, device=self.mean.device).reshape(1, 3, *image.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean
        if self.mean_image.numel():
            mean = self.mean_image
            if mean.shape[-2:] != x.shape[-2:]:
                mean = nn.functional.interpolate(mean, size=x.shape[-2:], mode="bilinear", align_corners=False)
        x = (x.to(mean.dtype) - mean) * self.scale
        if self.grey:  # ITU-R BT.601 luma, as PIL's convert("L"); linear, so grey(x) - grey(mean)
            x = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        return x


def _adopt_mean_image(module: InputNorm, state_dict: dict, prefix: str, *args) -> None:
    """Before loading: the mean image takes the saved one's size; checkpoints written before the mean-image option
    have no such entry, they use the mean RGB."""
    state_dict.setdefault(prefix + "mean_image", torch.zeros(1, 3, 0, 0))
    module.set_mean_image(state_dict[prefix + "mean_image"])
