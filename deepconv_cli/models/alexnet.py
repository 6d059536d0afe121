"""AlexNet (Krizhevsky et al. 2012, section 3.5) with its two towers or one, and ZFNet (Zeiler & Fergus 2013).

AlexNet: conv1 96@11x11/4; conv2 256@5x5; conv3 384@3x3; conv4 384@3x3; conv5 256@3x3; FC 4096, 4096, classes.
ReLU after every layer; LRN (k=2, n=5, alpha=1e-4, beta=0.75) after the ReLU of conv1 and conv2; overlapping
3x3/2 max-pooling after both LRNs and after conv5; dropout 0.5 on FC1 and FC2. With two towers (as published,
one per GPU) conv2, conv4 and conv5 see only their own tower's maps (`groups=2`) and LRN normalises within a
tower; conv3 and the FC layers see both. 227-pixel crops, as the original release: the paper's "224" does not
give its 55x55 maps with an 11x11/4 convolution, 227 does ((227 - 11) / 4 + 1 = 55), and FC1 reads 6x6x256.

ZFNet (the handbook's table, section 0.11): conv1 96@7x7/2 -> 110, max-pool 3x3/2 -> 55, conv2 256@5x5/2 -> 26,
max-pool -> 13, conv3-5 as AlexNet without towers, max-pool -> 6; 224-pixel crops. The ZFNet paper normalises
contrast across feature maps after the first two pooled layers; we use AlexNet's LRN there (pool, then LRN).

Init (AlexNet section 5): weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the FC hidden layers, 0 elsewhere.
"""

import torch
from torch import nn

from deepconv_cli.models.heads import ConvHead
from deepconv_cli.models.init import init_weights
from deepconv_cli.models.interface import Classifier, feature_size
from deepconv_cli.models.layers import alexnet_lrn
from deepconv_cli.models.spec import ArchSpec

FC_WIDTH = 4096


class TowerLRN(nn.Module):
    """AlexNet's LRN applied within each tower's maps, as on the paper's two GPUs (never across the boundary)."""

    def __init__(self, towers: int) -> None:
        super().__init__()
        self.towers, self.lrn = towers, alexnet_lrn()

    def describe(self) -> str:
        return f"LRN n={self.lrn.size}" + (f", within each of {self.towers} towers" if self.towers > 1 else "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.towers == 1:
            return self.lrn(x)
        return torch.cat([self.lrn(part) for part in x.chunk(self.towers, dim=1)], dim=1)


def _width(channels: int, width: float, towers: int) -> int:
    """Scaled channels, a multiple of the number of towers."""
    return max(1, round(channels * width / towers)) * towers


class AlexNet(Classifier):
    """AlexNet (towers=2, as published; towers=1: one tower) or ZFNet (zfnet=True)."""

    table_blocks = (TowerLRN,)  # `deepconv models alexnet` shows a tower LRN as one layer

    def __init__(self, arch: str, num_classes: int = 1000, width: float = 1.0, crop_size: int = 227,
                 dropout: float | None = 0.5, init: str = "normal", init_std: float = 0.01, towers: int = 2,
                 zfnet: bool = False) -> None:
        super().__init__(arch, crop_size)
        c = [_width(n, width, towers) for n in (96, 256, 384, 384, 256)]
        g = towers
        if zfnet:
            stem = [nn.Conv2d(3, c[0], 7, 2, 1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1), TowerLRN(1),
                    nn.Conv2d(c[0], c[1], 5, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1), TowerLRN(1)]
        else:
            stem = [nn.Conv2d(3, c[0], 11, 4), nn.ReLU(inplace=True), TowerLRN(g), nn.MaxPool2d(3, 2),
                    nn.Conv2d(c[0], c[1], 5, padding=2, groups=g), nn.ReLU(inplace=True), TowerLRN(g),
                    nn.MaxPool2d(3, 2)]
        self.features = nn.Sequential(
            *stem,
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1, groups=g), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1, groups=g), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        channels, h, w = feature_size(self.features, 3, crop_size)
        if h < 1 or w < 1:
            raise ValueError(f"crop_size {crop_size} is too small for {arch}")
        hidden = max(1, round(FC_WIDTH * width))
        self.classifier = ConvHead(channels, h, [hidden, hidden], num_classes, 0.5 if dropout is None else dropout)
        self.reset_parameters(init, init_std)

    @torch.no_grad()
    def reset_parameters(self, init: str, init_std: float) -> None:
        if init in ("glorot", "kaiming"):
            init_weights(self, init, init_std)
            return
        init_weights(self, "normal", init_std)  # "normal" and "paper": N(0, std), std 0.01 in the paper
        convs = [m for _, m in self.trunk_layers()]
        for layer in [convs[1], convs[3], convs[4]] + [m for _, m in self.head_layers()[:-1]]:
            nn.init.ones_(layer.bias)


def _alexnet(towers: int, zfnet: bool = False):
    def build(num_classes: int, width: float, crop_size: int, dropout: float | None, init: str,
              init_std: float) -> AlexNet:
        name = "zfnet" if zfnet else "alexnet" if towers == 2 else "alexnet-1tower"
        return AlexNet(name, num_classes, width, crop_size, dropout, init, init_std, towers, zfnet)

    return build


SPECS = [
    ArchSpec("alexnet", "AlexNet", _alexnet(2), ("alexnet-2gpu",), "two towers (groups=2) as published; 227 crops",
             227, paper_params="60 M (section 1)", title="AlexNet"),
    ArchSpec("alexnet-1tower", "AlexNet", _alexnet(1), (), "one tower (no groups); 227 crops", 227,
             title="AlexNet (one tower)"),
    ArchSpec("zfnet", "AlexNet", _alexnet(1, zfnet=True), (), "7x7/2 conv1, 5x5/2 conv2, LRN after pool1-2", 224,
             title="ZFNet"),
]
