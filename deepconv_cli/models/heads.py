"""Dense-capable heads: FC layers held conv-shaped (VGG, AlexNet, ZFNet, LeNet-5) or global pooling (NiN, GoogLeNet).

`ConvHead`: FC1 is a k x k convolution, the next FC layers 1 x 1. On a crop (feature map exactly k x k) they run as
matrix products, which is what FC layers are and what GPUs do fastest; on a larger, uncropped image the same
weights run as convolutions and yield a class-score map (VGG paper section 3.2). One weight layout serves both,
so crop and dense evaluation cannot drift apart, and a torchvision `Linear(25088, 4096)` weight is the same
numbers reshaped to (4096, 512, 7, 7).

`PoolHead`: a 1 x 1 convolution to class scores over the whole map; averaging that score map equals global
average pooling followed by a linear layer, so dense evaluation is native.

Every head answers: `forward` (score map), `dense`/`crop` (one fixed path each, for export), `descriptor` (the
penultimate layer densely), `last_layer`, `replace_last_layer`, `weight_layers`, `out_channels`.
"""

from collections.abc import Callable, Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

Activation = Callable[[torch.Tensor], torch.Tensor]


class Head(nn.Module):
    """What a head provides (see the module docstring)."""

    def last_layer(self) -> tuple[str, nn.Conv2d]:
        name = self.weight_layers()[-1][0]
        return name, getattr(self, name)

    @property
    def out_channels(self) -> int:
        return self.last_layer()[1].out_channels

    def replace_last_layer(self, out_channels: int) -> None:
        name, old = self.last_layer()
        new = nn.Conv2d(old.in_channels, out_channels, old.kernel_size).to(old.weight.device, old.weight.dtype)
        nn.init.normal_(new.weight, 0.0, 0.01)
        nn.init.zeros_(new.bias)
        setattr(self, name, new)

    def weight_layers(self) -> list[tuple[str, nn.Conv2d]]:
        raise NotImplementedError

    def dense(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def crop(self, features: torch.Tensor) -> torch.Tensor:
        return self.dense(features).mean(dim=(2, 3))

    def descriptor(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dense(features)


class ConvHead(Head):
    """FC layers fc1 ... fcN (hidden widths, then classes), the activation and dropout after each hidden one."""

    def __init__(
        self,
        in_channels: int,
        kernel: int,
        hidden: Sequence[int],
        num_classes: int,
        dropout: float = 0.5,
        activation: Activation = F.relu,
    ) -> None:
        super().__init__()
        self.kernel, self.depth, self.activation = kernel, len(hidden) + 1, activation
        widths = [in_channels, *hidden, num_classes]
        for i, (cin, cout) in enumerate(pairwise(widths)):
            setattr(self, f"fc{i + 1}", nn.Conv2d(cin, cout, kernel if i == 0 else 1))
        self.dropout = nn.Dropout(dropout)

    def weight_layers(self) -> list[tuple[str, nn.Conv2d]]:
        return [(f"fc{i + 1}", getattr(self, f"fc{i + 1}")) for i in range(self.depth)]

    def _check(self, features: torch.Tensor) -> None:
        h, w = features.shape[-2:]
        if h < self.kernel or w < self.kernel:
            raise ValueError(
                f"feature map {h}x{w} is smaller than the classifier's {self.kernel}x{self.kernel} window: "
                "the input image is smaller than the training crop"
            )

    def _hidden_dense(self, x: torch.Tensor) -> torch.Tensor:
        for _, layer in self.weight_layers()[:-1]:
            x = self.dropout(self.activation(layer(x)))
        return x

    def _hidden_crop(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for _, layer in self.weight_layers()[:-1]:
            x = self.dropout(self.activation(F.linear(x, layer.weight.flatten(1), layer.bias)))
        return x

    def dense(self, features: torch.Tensor) -> torch.Tensor:
        return self.last_layer()[1](self._hidden_dense(features))

    def crop(self, features: torch.Tensor) -> torch.Tensor:
        last = self.last_layer()[1]
        return F.linear(self._hidden_crop(features), last.weight.flatten(1), last.bias)

    def descriptor(self, features: torch.Tensor) -> torch.Tensor:
        self._check(features)
        return self._hidden_dense(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Class scores (N, classes, h, w); h = w = 1 and matrix products when the map is exactly kernel x kernel."""
        self._check(features)
        n, _, h, w = features.shape
        if h == self.kernel and w == self.kernel:
            return self.crop(features).view(n, -1, 1, 1)
        return self.dense(features)


class PoolHead(Head):
    """Dropout, then `fc`: a 1 x 1 convolution to class scores at every position (averaged by `forward`'s caller)."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Conv2d(in_channels, num_classes, 1)

    def weight_layers(self) -> list[tuple[str, nn.Conv2d]]:
        return [("fc", self.fc)]

    def dense(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features))

    def crop(self, features: torch.Tensor) -> torch.Tensor:
        pooled = self.dropout(features.mean(dim=(2, 3)))
        return F.linear(pooled, self.fc.weight.flatten(1), self.fc.bias)

    def descriptor(self, features: torch.Tensor) -> torch.Tensor:
        return features
