"""THE table: the VGG configurations of Table 1 (A, A-LRN, B, C, D, E) and section 4.1's B-shallow, and one builder.

Each configuration is a list of layer tokens read top to bottom as in the paper's Table 1:
  64        conv3-64 (3x3 convolution, stride 1, padding 1, then ReLU)
  (1, 512)  conv1-512 (config C);  (5, 64) a 5x5 convolution (B-shallow)
  "LRN"     AlexNet's local response normalisation (A-LRN)
  "M"       2x2 max-pooling, stride 2
Every network ends with FC-4096, FC-4096, FC-classes (held conv-shaped, see heads.py).
"""

from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

from deepconv_cli.models.heads import ConvHead
from deepconv_cli.models.init import init_weights
from deepconv_cli.models.layers import InputNorm, alexnet_lrn

M, LRN = "M", "LRN"
CONFIGS: dict[str, list] = {
    "A": [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "A-LRN": [64, LRN, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "B": [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "B-shallow": [(5, 64), M, (5, 128), M, (5, 256), M, (5, 512), M, (5, 512), M],
    "C": [64, 64, M, 128, 128, M, 256, 256, (1, 256), M, 512, 512, (1, 512), M, 512, 512, (1, 512), M],
    "D": [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M],
    "E": [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M],
}
Arch = Literal["A", "A-LRN", "B", "B-shallow", "C", "D", "E"]
ARCHS: tuple[str, ...] = Arch.__args__
assert ARCHS == tuple(CONFIGS)
FC_WIDTH = 4096
STRIDE = 32  # five 2x2 poolings


def _conv_spec(token: int | tuple[int, int]) -> tuple[int, int]:
    return (3, token) if isinstance(token, int) else token


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class VGG(nn.Module):
    """InputNorm -> convolutional trunk (`features`) -> dense-ready head (`classifier`).

    `forward` takes a 0..255 RGB batch of any size >= `crop_size` and returns class scores averaged over the
    score map: on a crop that map is 1x1, so this is the plain forward; on a whole image it is the paper's dense
    evaluation (before softmax and flip averaging, which evaluation adds).
    """

    def __init__(
        self,
        arch: str = "D",
        num_classes: int = 1000,
        width: float = 1.0,
        crop_size: int = 224,
        dropout: float = 0.5,
        init: str = "normal",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        if arch not in CONFIGS:
            raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
        if crop_size % STRIDE:
            raise ValueError(f"crop_size must be a multiple of {STRIDE} (five 2x2 poolings), got {crop_size}")
        self.arch, self.crop_size = arch, crop_size
        self.normalize = InputNorm()
        layers: list[nn.Module] = []
        channels = 3
        for token in CONFIGS[arch]:
            if token == M:
                layers.append(nn.MaxPool2d(2, 2))
            elif token == LRN:
                layers.append(alexnet_lrn())
            else:
                kernel, out = _conv_spec(token)
                out = _scaled(out, width)
                layers += [nn.Conv2d(channels, out, kernel, padding=kernel // 2), nn.ReLU(inplace=True)]
                channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = ConvHead(channels, crop_size // STRIDE, _scaled(FC_WIDTH, width), num_classes, dropout)
        init_weights(self, init, init_std)

    def weight_layers(self) -> list[tuple[str, nn.Conv2d]]:
        """The weight layers in order (conv1 ... convN, fc1, fc2, fc3): the positions deepening copies by."""
        convs = [(f"conv{i + 1}", m) for i, m in enumerate(m for m in self.features if isinstance(m, nn.Conv2d))]
        head = self.classifier
        return convs + [("fc1", head.fc1), ("fc2", head.fc2), ("fc3", head.fc3)]

    def score_map(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and min(x.shape[-2:]) < self.crop_size:
            raise ValueError(f"input {x.shape[-2]}x{x.shape[-1]} is smaller than the training crop {self.crop_size}")
        return self.classifier(self.features(self.normalize(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_map(x).mean(dim=(2, 3))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_specs(arch: str, width: float = 1.0) -> Iterator[tuple[int, int, int]]:
    """(kernel, in_channels, out_channels) of each convolution of `arch`, read from the table."""
    channels = 3
    for token in CONFIGS[arch]:
        if token not in (M, LRN):
            kernel, out = _conv_spec(token)
            out = _scaled(out, width)
            yield kernel, channels, out
            channels = out


def parameter_count(arch: str, num_classes: int = 1000, width: float = 1.0, crop_size: int = 224) -> int:
    """The parameter count computed from the table alone (no network is built): Table 2 of the paper."""
    specs = list(conv_specs(arch, width))
    convs = sum(k * k * cin * cout + cout for k, cin, cout in specs)
    k, hidden, last = crop_size // STRIDE, _scaled(FC_WIDTH, width), specs[-1][2]
    return convs + (k * k * last + 1) * hidden + (hidden + 1) * hidden + (hidden + 1) * num_classes
