"""THE table: the VGG configurations of Table 1 (A, A-LRN, B, C, D, E) and section 4.1's B-shallow, and one builder.

Each configuration is a list of layer tokens read top to bottom as in the paper's Table 1:
  64        conv3-64 (3x3 convolution, stride 1, padding 1, then ReLU)
  (1, 512)  conv1-512 (config C);  (5, 64) a 5x5 convolution (B-shallow)
  "LRN"     AlexNet's local response normalisation (A-LRN)
  "M"       2x2 max-pooling, stride 2
Every network ends with FC-4096, FC-4096, FC-classes (held conv-shaped, see heads.py).

Other libraries' weights (`deepconv import`, `WEIGHTS` below): torchvision `vgg11/13/16/19` (configs A/B/D/E) hold
the convolutions as `features.N.{weight,bias}` and the FC layers as Linear `classifier.0/3/6` (4096 x 25088, 4096 x
4096, classes x 4096); timm `vgg*` the same `features.N`, then `pre_logits.fc1` (a 7x7 conv), `pre_logits.fc2` (1x1
conv), `head.fc` (Linear). deepconv holds all three FC layers conv-shaped, so the Linear weights are the same numbers
reshaped: (4096, 25088) -> (4096, 512, 7, 7) in torch's (C, H, W) flattening order, which is how torchvision
flattens the feature map. Both expect ImageNet mean/std normalisation of a 0..1 image, evaluated at S = 256.
"""

from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

from deepconv_cli.errors import failure
from deepconv_cli.files import reason
from deepconv_cli.models.heads import ConvHead
from deepconv_cli.models.init import init_weights
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.layers import alexnet_lrn
from deepconv_cli.models.spec import ArchSpec, ForeignWeights, WeightMap

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


HEADS = {  # the three FC layers' names in each library's VGG state dicts
    "torchvision": ("classifier.0", "classifier.3", "classifier.6"),
    "timm": ("pre_logits.fc1", "pre_logits.fc2", "head.fc"),
}


def conv_feature_indices(arch: str) -> list[int]:
    """Index in deepconv's `features` Sequential of each convolution of `arch` (conv+ReLU take 2 slots)."""
    positions, index = [], 0
    for token in CONFIGS[arch]:
        if token in (M, LRN):
            index += 1
        else:
            positions.append(index)
            index += 2
    return positions


def _conv_keys(state: dict[str, torch.Tensor]) -> list[int]:
    indices = [int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight")]
    return sorted(i for i in indices if state[f"features.{i}.weight"].dim() == 4)


def _infer_arch(shapes: list[tuple[int, ...]], arch: str) -> str:
    """The config whose convolutions have exactly these weight shapes (out, in, k, k)."""
    candidates = list(ALIASES)
    matches = [a for a in candidates if [(o, i, k, k) for k, i, o in conv_specs(a)] == shapes]
    if arch == "auto":
        if not matches:
            raise failure(
                f"{len(shapes)} convolutions of these shapes match none of the configs {', '.join(candidates)}"
            )
        return matches[0]
    if arch not in matches:
        found = f"config {matches[0]}" if matches else f"{len(shapes)} convolutions matching no config"
        raise failure(f"--arch {arch} does not fit these weights: they hold {found}")
    return arch


def map_state_dict(state: dict[str, torch.Tensor], source: str, arch: str = "auto") -> ForeignWeights:
    """torchvision or timm VGG state dict -> deepconv VGG state dict (pure: no file, no network built)."""
    if any(k.endswith("running_mean") for k in state):
        raise failure("batch-normalised VGG weights (vgg*_bn) have no deepconv configuration; use plain vgg11/13/16/19")
    fc_names = HEADS[source]
    missing = [f"{n}.weight" for n in fc_names if f"{n}.weight" not in state]
    if missing:
        raise failure(f"not a {source} VGG state dict: no {missing[0]} (is --from right?)")
    sources = _conv_keys(state)
    shapes = [tuple(state[f"features.{i}.weight"].shape) for i in sources]
    arch = _infer_arch(shapes, arch)
    channels = shapes[-1][0]
    w1, w3 = state[f"{fc_names[0]}.weight"], state[f"{fc_names[2]}.weight"]
    hidden, num_classes = w1.shape[0], w3.shape[0]
    kernel = round((w1[0].numel() / channels) ** 0.5)
    head_shapes = {
        "fc1": (hidden, channels, kernel, kernel),
        "fc2": (hidden, hidden, 1, 1),
        "fc3": (num_classes, hidden, 1, 1),
    }
    out: dict[str, torch.Tensor] = {}
    try:
        for src, dst in zip(sources, conv_feature_indices(arch)):
            out[f"features.{dst}.weight"] = state[f"features.{src}.weight"]
            out[f"features.{dst}.bias"] = state[f"features.{src}.bias"]
        for (name, shape), src in zip(head_shapes.items(), fc_names):
            out[f"classifier.{name}.weight"] = state[f"{src}.weight"].reshape(shape)
            out[f"classifier.{name}.bias"] = state[f"{src}.bias"]
    except (KeyError, RuntimeError) as e:  # a missing bias, an FC layer of the wrong size
        raise failure(f"not a {source} VGG state dict: {reason(e)}") from None
    return ForeignWeights(arch, out, num_classes, kernel * STRIDE)


WEIGHTS = WeightMap(tuple(HEADS), map_state_dict)  # configs A, B, D, E (torchvision/timm vgg11, 13, 16, 19)

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
             weight_map=WEIGHTS if a in ALIASES else None, stride=STRIDE, title=f"VGG-{a}")
    for a in ARCHS
]
