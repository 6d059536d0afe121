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

from torch import nn

from deepconv_cli.models.heads import ConvHead
from deepconv_cli.models.init import init_weights
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.layers import alexnet_lrn
from deepconv_cli.models.spec import ArchSpec

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


class VGG(Classifier):
    """InputNorm -> convolutional trunk (`features`) -> dense-ready head (`classifier`, FC1 a k x k conv)."""

    def __init__(
        self,
        arch: str = "D",
        num_classes: int = 1000,
        width: float = 1.0,
        crop_size: int = 224,
        dropout: float | None = 0.5,
        init: str = "normal",
        init_std: float = 0.01,
    ) -> None:
        if arch not in CONFIGS:
            raise ValueError(f"unknown VGG configuration {arch!r}; choose one of {', '.join(ARCHS)}")
        if crop_size % STRIDE or crop_size < STRIDE:
            raise ValueError(f"crop_size must be a multiple of {STRIDE} (five 2x2 poolings), got {crop_size}")
        super().__init__(arch, crop_size)
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
        hidden = _scaled(FC_WIDTH, width)
        self.classifier = ConvHead(channels, crop_size // STRIDE, [hidden, hidden], num_classes,
                                   0.5 if dropout is None else dropout)
        init_weights(self, "normal" if init == "paper" else init, init_std)


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


NOTES = {
    "A": "8 conv + 3 FC; trained from random init, the source of deepening",
    "A-LRN": "A with AlexNet LRN after the first conv (paper: no gain)",
    "B": "10 conv + 3 FC",
    "B-shallow": "B with each pair of 3x3 convs replaced by one 5x5 (section 4.1)",
    "C": "D with a 1x1 conv as the last layer of blocks 3-5",
    "D": "13 conv + 3 FC (VGG-16)",
    "E": "16 conv + 3 FC (VGG-19)",
}
ALIASES = {"A": ("vgg11",), "B": ("vgg13",), "D": ("vgg16",), "E": ("vgg19",)}
TABLE_2 = {"A": "133 M", "A-LRN": "133 M", "B": "133 M", "B-shallow": "(section 4.1)", "C": "134 M", "D": "138 M",
           "E": "144 M"}


def _builder(arch: str):
    def build(num_classes: int, width: float, crop_size: int, dropout: float | None, init: str, init_std: float) -> VGG:
        return VGG(arch, num_classes, width, crop_size, dropout, init, init_std)

    return build


SPECS = [
    ArchSpec(a, "VGG", _builder(a), ALIASES.get(a, ()), NOTES[a], 224, paper_params=TABLE_2[a],
             weight_map="deepconv_cli.export.import_weights:map_state_dict" if a in ALIASES else "")
    for a in ARCHS
]
