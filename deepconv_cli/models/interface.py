"""The seam every network plugs into: the small interface training, deepening, evaluation, export and benchmarks use.

A network is a `Classifier`: input normalisation (`normalize`, 0..255 RGB in), a convolutional trunk (`features`)
and a dense-capable head (`classifier`, a `Head`). Nothing outside a model file reaches further in than the methods
below, so a new architecture is one model file plus a registry entry (models/registry.py).

- `forward(x)` -> (N, K): the class-score map averaged spatially; on a training-crop-sized input the map is 1x1,
  on a whole image this is the paper's dense evaluation (before softmax and flip averaging).
- `score_map(x)` -> (N, K, h, w); `descriptor_map(x)` -> (N, D, h, w): the penultimate layer, densely.
- `last_layer()` / `replace_last_layer(n)`: the class-score layer, and a fresh one with n outputs (new classes,
  box regression).
- `weight_layers()`: the ordered weight layers (deepening copies by position); `blocks()`: the trunk's layers by
  block, as the family declares them; `conv_positions()`: (block, index); `layer_norms()`: each layer's norm layer.
- `export_module(fixed_size)`: one fixed code path for TorchScript / ONNX (no branch on the input size).
- `forward_train(x)` -> (scores, auxiliary scores): GoogLeNet's side classifiers; none for the others.
"""

import copy

import torch
from torch import nn

from deepconv_cli.models.heads import Head
from deepconv_cli.models.layers import InputNorm, conv_norm_pairs


class Classifier(nn.Module):
    """Base class of every deepconv network. Subclasses set `features` (trunk) and `classifier` (a `Head`)."""

    features: nn.Module
    classifier: Head

    def __init__(self, arch: str, crop_size: int, grey: bool = False) -> None:
        super().__init__()
        self.arch, self.crop_size = arch, crop_size
        self.normalize = InputNorm(grey=grey)

    @property
    def num_classes(self) -> int:
        return self.classifier.out_channels

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map the head reads, from a 0..255 RGB batch."""
        return self.features(self.normalize(x))

    def _check_size(self, x: torch.Tensor) -> None:
        if not torch.jit.is_tracing() and min(x.shape[-2:]) < self.crop_size:
            raise ValueError(f"input {x.shape[-2]}x{x.shape[-1]} is smaller than the training crop {self.crop_size}")

    def score_map(self, x: torch.Tensor) -> torch.Tensor:
        self._check_size(x)
        return self.classifier(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_map(x).mean(dim=(2, 3))

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Class scores and the scores of auxiliary classifiers (weighted into the training loss)."""
        return self(x), []

    def descriptor_map(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer's output (after its non-linearity) applied densely: (N, D, h, w)."""
        self._check_size(x)
        return self.classifier.descriptor(self.trunk(x))

    def last_layer(self) -> tuple[str, nn.Module]:
        return self.classifier.last_layer()

    def replace_last_layer(self, out_channels: int) -> None:
        self.classifier.replace_last_layer(out_channels)

    def trunk_layers(self) -> list[tuple[str, nn.Module]]:
        """The trunk's weight layers in order, named conv1 ... convN."""
        convs = [m for m in self.features.modules()
                 if isinstance(m, nn.Conv2d | nn.Linear) or getattr(m, "is_weight_layer", False)]
        return [(f"conv{i + 1}", m) for i, m in enumerate(convs)]

    def head_layers(self) -> list[tuple[str, nn.Module]]:
        """The head's weight layers in order (fc1 ... fcN, or fc)."""
        return self.classifier.weight_layers()

    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        """Every weight layer in order: the trunk's, then the head's."""
        return self.trunk_layers() + self.head_layers()

    def blocks(self) -> list[list[nn.Module]]:
        """The trunk's weight layers grouped into the family's blocks (VGG: between max-poolings; a ResNet: its
        stages), in order. Declared by the family (override); the default is one block of every trunk layer."""
        return [[m for _, m in self.trunk_layers()]]

    def conv_positions(self) -> list[tuple[str, tuple[int, int], nn.Module]]:
        """(name, (block, index in block), conv) of the trunk's layers, blocks and indices counted from 1."""
        names = {id(m): n for n, m in self.trunk_layers()}
        return [(names[id(m)], (b + 1, i + 1), m) for b, block in enumerate(self.blocks()) for i, m in enumerate(block)]

    def layer_norms(self) -> dict[str, nn.Module]:
        """Trunk layer name -> the normalisation layer applied to its output (its batch norm), for the layers that
        have one: deepening copies it, running statistics included, with the layer. Default: a norm layer that
        directly follows the convolution in an nn.Sequential (models/layers.py: conv_norm_pairs)."""
        names = {id(m): n for n, m in self.trunk_layers()}
        return {names[id(seq[i])]: seq[i + 1] for seq, i in conv_norm_pairs(self.features) if id(seq[i]) in names}

    def inference_parameters(self) -> int:
        """Parameters of the network as evaluated and exported (auxiliary training heads excluded)."""
        return sum(p.numel() for p in self.parameters())

    def export_module(self, fixed_size: bool = False) -> nn.Module:
        """The form to export, in eval mode: dense (any H x W >= crop) or the crop-only classifier."""
        return (CropScores(self) if fixed_size else DenseScores(self)).eval()


class DenseScores(nn.Module):
    """0..255 RGB NCHW, any H, W >= crop -> (N, K): the head always as convolutions, score map averaged."""

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.normalize, self.features, self.head = model.normalize, model.features, model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.dense(self.features(self.normalize(x))).mean(dim=(2, 3))


class CropScores(DenseScores):
    """0..255 RGB NCHW of exactly crop x crop -> (N, K): the head's fixed-size path (FC layers as matmuls)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.crop(self.features(self.normalize(x)))


def feature_size(features: nn.Module, channels: int, crop_size: int) -> tuple[int, int, int]:
    """(channels, height, width) of a trunk's output on a crop, computed on the meta device (no memory, no time)."""
    with torch.no_grad():
        out = copy.deepcopy(features).to("meta")(torch.empty(1, channels, crop_size, crop_size, device="meta"))
    return tuple(out.shape[1:])
