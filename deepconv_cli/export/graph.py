"""The network as it is exported: the dense, fully convolutional form (any H x W) or the fixed-size crop classifier.

`VGG.forward` picks the head's FC (matrix) path on a crop-sized input and the convolutional path otherwise, a
Python branch on the feature-map size that a traced or exported graph would freeze. These wrappers take one path
always, on the same weight tensors (shared, not copied), without dropout:
- `DenseScores`: FC1 as a k x k convolution, FC2/FC3 as 1 x 1, class-score map averaged spatially; on a crop the map
  is 1 x 1 and equals the FC path (export verifies this numerically), on a larger image it is dense evaluation.
- `CropScores`: the FC path as matrix products on a crop of exactly crop_size x crop_size.
"""

import torch
import torch.nn.functional as F
from torch import nn

from deepconv_cli.models.vgg import VGG


class DenseScores(nn.Module):
    """0..255 RGB NCHW float, any H, W >= crop_size -> (N, classes) class scores averaged over the score map."""

    def __init__(self, model: VGG) -> None:
        super().__init__()
        self.normalize, self.features = model.normalize, model.features
        head = model.classifier
        self.fc1, self.fc2, self.fc3 = head.fc1, head.fc2, head.fc3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(self.features(self.normalize(x))))
        return self.fc3(F.relu(self.fc2(x))).mean(dim=(2, 3))


class CropScores(DenseScores):
    """0..255 RGB NCHW float of exactly crop_size x crop_size -> (N, classes) class scores (FC layers as matmuls)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.normalize(x)).flatten(1)
        x = F.relu(F.linear(x, self.fc1.weight.flatten(1), self.fc1.bias))
        x = F.relu(F.linear(x, self.fc2.weight.flatten(1), self.fc2.bias))
        return F.linear(x, self.fc3.weight.flatten(1), self.fc3.bias)


def exported_module(model: VGG, fixed_size: bool) -> nn.Module:
    """The wrapper to export, in eval mode."""
    return (CropScores(model) if fixed_size else DenseScores(model)).eval()
