"""Network in Network for CIFAR-sized inputs (Lin et al. 2014; the handbook's section 0.12 table, `nin-cifar`).

Three mlpconv blocks on a 32x32 RGB crop, valid (unpadded) convolutions: 3x3 conv 16 -> 1x1 16 (30x30); 3x3 conv 64
-> 1x1 64 (28x28); 3x3 conv 100 -> 1x1 classes (26x26); ReLU after every layer but the last; global average pooling
straight to class scores, no FC layer: 81,960 parameters for 100 classes. The last 1x1 convolution is the head
(`PoolHead`): its score map averaged is global average pooling, so dense evaluation is native (any H x W in, one
score vector out). Dropout between the mlpconv blocks, as in the NiN paper, is the `dropout` option (default off).
"""

from torch import nn

from deepconv_cli.models.heads import PoolHead
from deepconv_cli.models.init import init_weights
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.spec import ArchSpec

BLOCKS = (16, 64, 100)


class NiN(Classifier):
    def __init__(self, num_classes: int = 100, width: float = 1.0, crop_size: int = 32, dropout: float | None = 0.0,
                 init: str = "normal", init_std: float = 0.01) -> None:
        super().__init__("nin-cifar", crop_size)
        if crop_size < 7:
            raise ValueError(f"crop_size {crop_size} is too small for NiN's three unpadded 3x3 convolutions")
        widths = [max(1, round(c * width)) for c in BLOCKS]
        layers: list[nn.Module] = []
        cin = 3
        for i, c in enumerate(widths):
            layers += [nn.Conv2d(cin, c, 3), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers += [nn.Conv2d(c, c, 1), nn.ReLU(inplace=True)]
                if dropout:
                    layers.append(nn.Dropout(dropout))
            cin = c
        self.features = nn.Sequential(*layers)
        self.classifier = PoolHead(cin, num_classes)
        init_weights(self, "normal" if init == "paper" else init, init_std)


def _nin(num_classes: int, width: float, crop_size: int, dropout: float | None, init: str, init_std: float) -> NiN:
    return NiN(num_classes, width, crop_size, dropout, init, init_std)


SPECS = [ArchSpec("nin-cifar", "NiN", _nin, ("nin",), "3 mlpconv blocks, global average pooling, no FC", 32,
                  paper_params="81,960 (100 classes)", stride=1, title="NiN")]  # valid convs, no pooling
