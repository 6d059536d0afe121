"""GoogLeNet / Inception v1 (Szegedy et al. 2015, Table 1; the handbook's section 0.14), without batch norm.

7x7/2 conv 64, 3x3/2 max-pool, LRN, 1x1 conv 64, 3x3 conv 192, LRN, max-pool, inception 3a, 3b, max-pool, 4a-4e,
max-pool, 5a, 5b, then the head: global average pooling (the paper's 7x7 average pool on a 224 crop), dropout 0.4,
linear to classes. Every inception module has the four branches 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max-pool ->
1x1, with Table 1's widths, ReLU after every convolution, outputs concatenated. Max-pools round up (as the
paper's 112 -> 56 -> 28 -> 14 -> 7 sizes need).

Two auxiliary classifiers on 4a and 4d (5x5/3 average pool, 1x1 conv 128, FC 1024, dropout 0.7, linear) add 0.3 x
their loss in training only; evaluation, export and the parameter count `deepconv models` gives leave them out.
"""

import torch
import torch.nn.functional as F
from torch import nn

from deepconv_cli.models.heads import PoolHead
from deepconv_cli.models.init import init_weights
from deepconv_cli.models.interface import Classifier, feature_size
from deepconv_cli.models.layers import alexnet_lrn
from deepconv_cli.models.spec import ArchSpec

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}
AUX_TAPS = ("4a", "4d")


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=k // 2), nn.ReLU(inplace=True))


class CeilMaxPool2d(nn.MaxPool2d):
    """3x3/2 max-pool rounding its output size up, as -inf padding on the right and bottom then a plain pool: the
    numbers of MaxPool2d(3, 2, ceil_mode=True), which torch.export cannot trace for a dynamic H, W (ONNX export)."""

    def __init__(self) -> None:
        super().__init__(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 3, 2)


class Inception(nn.Module):
    def __init__(self, cin: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        n1, r3, n3, r5, n5, proj = widths
        self.out_channels = n1 + n3 + n5 + proj
        self.b1 = _conv(cin, n1, 1)
        self.b3 = nn.Sequential(_conv(cin, r3, 1), _conv(r3, n3, 3))
        self.b5 = nn.Sequential(_conv(cin, r5, 1), _conv(r5, n5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), _conv(cin, proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)

    def describe(self) -> str:
        return f"inception -> {self.out_channels}"


class AuxClassifier(nn.Module):
    """5x5/3 average pool (global when the map is smaller), 1x1 conv 128, FC 1024, dropout 0.7, linear."""

    def __init__(self, cin: int, side: int, num_classes: int, width: float) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, 3) if side >= 5 else nn.AdaptiveAvgPool2d(1)
        pooled = (side - 5) // 3 + 1 if side >= 5 else 1
        c, hidden = max(1, round(128 * width)), max(1, round(1024 * width))
        self.conv = nn.Conv2d(cin, c, 1)
        self.fc = nn.Linear(c * pooled * pooled, hidden)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(self.pool(x))).flatten(1)
        return self.out(F.dropout(F.relu(self.fc(x)), 0.7, self.training))


class GoogLeNet(Classifier):
    table_blocks = (Inception,)
    aux_loss_weight = 0.3

    def __init__(self, num_classes: int = 1000, width: float = 1.0, crop_size: int = 224,
                 dropout: float | None = 0.4, init: str = "glorot", init_std: float = 0.01) -> None:
        super().__init__("googlenet", crop_size)
        w = [max(1, round(c * width)) for c in (64, 64, 192)]
        layers: dict[str, nn.Module] = {
            "conv1": _conv(3, w[0], 7, 2), "pool1": CeilMaxPool2d(), "lrn1": alexnet_lrn(),
            "conv2_reduce": _conv(w[0], w[1], 1), "conv2": _conv(w[1], w[2], 3), "lrn2": alexnet_lrn(),
            "pool2": CeilMaxPool2d(),
        }
        cin = w[2]
        for name, widths in INCEPTION.items():
            if name in ("4a", "5a"):
                layers[f"pool{name[0]}"] = CeilMaxPool2d()
            layers[f"inception{name}"] = Inception(cin, tuple(max(1, round(c * width)) for c in widths))
            cin = layers[f"inception{name}"].out_channels
        self.features = nn.Sequential()
        for name, module in layers.items():
            self.features.add_module(name, module)
        self.classifier = PoolHead(cin, num_classes, 0.4 if dropout is None else dropout)
        self.aux = nn.ModuleList()
        for tap in AUX_TAPS:
            upto = nn.Sequential(*list(self.features.children())[: self._index(tap) + 1])
            channels, side, _ = feature_size(upto, 3, crop_size)
            self.aux.append(AuxClassifier(channels, side, num_classes, width))
        init_weights(self, "glorot" if init == "paper" else init, init_std)

    def _index(self, tap: str) -> int:
        return list(dict(self.features.named_children())).index(f"inception{tap}")

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Class scores and the two auxiliary classifiers' scores (taps after 4a and 4d)."""
        self._check_size(x)
        taps = {self._index(t): head for t, head in zip(AUX_TAPS, self.aux)}
        aux, h = [], self.normalize(x)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in taps:
                aux.append(taps[i](h))
        return self.classifier(h).mean(dim=(2, 3)), aux

    def inference_parameters(self) -> int:
        return sum(p.numel() for name, p in self.named_parameters() if not name.startswith("aux."))

    def replace_last_layer(self, out_channels: int) -> None:
        super().replace_last_layer(out_channels)
        for head in self.aux:
            old = head.out
            head.out = nn.Linear(old.in_features, out_channels).to(old.weight.device, old.weight.dtype)


def _googlenet(num_classes: int, width: float, crop_size: int, dropout: float | None, init: str,
               init_std: float) -> GoogLeNet:
    return GoogLeNet(num_classes, width, crop_size, dropout, init, init_std)


SPECS = [ArchSpec("googlenet", "GoogLeNet", _googlenet, ("inception-v1",),
                  "Inception v1, no batch norm; 2 auxiliary classifiers in training", 224,
                  paper_params="about 6.8 M", title="GoogLeNet")]
