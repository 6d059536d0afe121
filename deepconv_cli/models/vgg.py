"""THE table: the VGG configurations of Table 1 (A, A-LRN, B, C, D, E) and section 4.1's B-shallow, and one builder;
each but A-LRN also with batch normalisation ("D-BN" = torchvision's and timm's vgg16_bn).

Each configuration is a list of layer tokens read top to bottom as in the paper's Table 1:
  64        conv3-64 (3x3 convolution, stride 1, padding 1, then ReLU)
  (1, 512)  conv1-512 (config C);  (5, 64) a 5x5 convolution (B-shallow)
  "LRN"     AlexNet's local response normalisation (A-LRN)
  "M"       2x2 max-pooling, stride 2
Every network ends with FC-4096, FC-4096, FC-classes (held conv-shaped, see heads.py). The "-BN" variants put a
BatchNorm2d between each convolution and its ReLU, and keep the convolution's bias, exactly as torchvision's
`vgg*_bn` (so the parameter counts and state-dict layouts are theirs); the FC layers have no batch norm.

Other libraries' weights (`deepconv import`, `WEIGHTS` below): torchvision `vgg11/13/16/19` (configs A/B/D/E) hold
the convolutions as `features.N.{weight,bias}` and the FC layers as Linear `classifier.0/3/6` (4096 x 25088, 4096 x
4096, classes x 4096); timm `vgg*` the same `features.N`, then `pre_logits.fc1` (a 7x7 conv), `pre_logits.fc2` (1x1
conv), `head.fc` (Linear). deepconv holds all three FC layers conv-shaped, so the Linear weights are the same numbers
reshaped: (4096, 25088) -> (4096, 512, 7, 7) in torch's (C, H, W) flattening order, which is how torchvision
flattens the feature map. Both expect ImageNet mean/std normalisation of a 0..1 image, evaluated at S = 256.
Their `vgg*_bn` hold each batch norm right after its convolution, at `features.N+1.{weight, bias, running_mean,
running_var, num_batches_tracked}` (timm's VGG builds `features` with torchvision's `make_layers` order).
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
BN = "-BN"
BN_ARCHS = tuple(a + BN for a in ARCHS if a != "A-LRN")  # LRN and batch norm in one net: nobody's choice
FC_WIDTH = 4096
STRIDE = 32  # five 2x2 poolings


def _conv_spec(token: int | tuple[int, int]) -> tuple[int, int]:
    return (3, token) if isinstance(token, int) else token


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def base_config(arch: str) -> tuple[str, bool]:
    """("D", True) for "D-BN": the Table 1 configuration and whether it is batch-normalised."""
    return (arch.removesuffix(BN), True) if arch.endswith(BN) else (arch, False)


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
        if arch not in CONFIGS and arch not in BN_ARCHS:
            raise ValueError(f"unknown VGG configuration {arch!r}; choose one of {', '.join(ARCHS + BN_ARCHS)}")
        if crop_size % STRIDE or crop_size < STRIDE:
            raise ValueError(f"crop_size must be a multiple of {STRIDE} (five 2x2 poolings), got {crop_size}")
        super().__init__(arch, crop_size)
        config, batch_norm = base_config(arch)
        self.config = CONFIGS[config]
        layers: list[nn.Module] = []
        channels = 3
        for token in self.config:
            if token == M:
                layers.append(nn.MaxPool2d(2, 2))
            elif token == LRN:
                layers.append(alexnet_lrn())
            else:
                kernel, out = _conv_spec(token)
                out = _scaled(out, width)
                layers += [nn.Conv2d(channels, out, kernel, padding=kernel // 2),
                           *([nn.BatchNorm2d(out)] if batch_norm else []), nn.ReLU(inplace=True)]
                channels = out
        self.features = nn.Sequential(*layers)
        hidden = _scaled(FC_WIDTH, width)
        self.classifier = ConvHead(channels, crop_size // STRIDE, [hidden, hidden], num_classes,
                                   0.5 if dropout is None else dropout)
        init_weights(self, "normal" if init == "paper" else init, init_std)

    def blocks(self) -> list[list[nn.Module]]:
        """The convolutions between Table 1's max-poolings (read from the table, not from the modules)."""
        convs, out = iter(m for _, m in self.trunk_layers()), [[]]
        for token in self.config:
            if token == M:
                out.append([])
            elif token != LRN:
                out[-1].append(next(convs))
        return [block for block in out if block]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_specs(arch: str, width: float = 1.0) -> Iterator[tuple[int, int, int]]:
    """(kernel, in_channels, out_channels) of each convolution of `arch`, read from the table."""
    channels = 3
    for token in CONFIGS[base_config(arch)[0]]:
        if token not in (M, LRN):
            kernel, out = _conv_spec(token)
            out = _scaled(out, width)
            yield kernel, channels, out
            channels = out


def parameter_count(arch: str, num_classes: int = 1000, width: float = 1.0, crop_size: int = 224) -> int:
    """The parameter count computed from the table alone (no network is built): Table 2 of the paper."""
    specs = list(conv_specs(arch, width))
    per_channel = 3 if base_config(arch)[1] else 1  # the bias, and a batch norm's weight and bias
    convs = sum(k * k * cin * cout + per_channel * cout for k, cin, cout in specs)
    k, hidden, last = crop_size // STRIDE, _scaled(FC_WIDTH, width), specs[-1][2]
    return convs + (k * k * last + 1) * hidden + (hidden + 1) * hidden + (hidden + 1) * num_classes


HEADS = {  # the three FC layers' names in each library's VGG state dicts
    "torchvision": ("classifier.0", "classifier.3", "classifier.6"),
    "timm": ("pre_logits.fc1", "pre_logits.fc2", "head.fc"),
}


def conv_feature_indices(arch: str) -> list[int]:
    """Index in deepconv's `features` Sequential of each convolution of `arch` (conv+ReLU take 2 slots, conv+BN+ReLU
    3)."""
    config, batch_norm = base_config(arch)
    positions, index = [], 0
    for token in CONFIGS[config]:
        if token in (M, LRN):
            index += 1
        else:
            positions.append(index)
            index += 3 if batch_norm else 2
    return positions


def _conv_keys(state: dict[str, torch.Tensor]) -> list[int]:
    indices = [int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight")]
    return sorted(i for i in indices if state[f"features.{i}.weight"].dim() == 4)


def _infer_arch(shapes: list[tuple[int, ...]], arch: str, batch_norm: bool) -> str:
    """The config whose convolutions have exactly these weight shapes (out, in, k, k), with or without batch norm."""
    candidates = [a for a in ALIASES if base_config(a)[1] == batch_norm]
    matches = [a for a in candidates if [(o, i, k, k) for k, i, o in conv_specs(a)] == shapes]
    if arch == "auto":
        if not matches:
            raise failure(
                f"{len(shapes)} convolutions of these shapes match none of the configs {', '.join(candidates)}"
            )
        return matches[0]
    if arch not in matches:
        kind = "batch-normalised " if batch_norm else ""
        found = f"config {matches[0]}" if matches else f"{len(shapes)} {kind}convolutions matching no config"
        raise failure(f"--arch {arch} does not fit these weights: they hold {found}")
    return arch


def map_state_dict(state: dict[str, torch.Tensor], source: str, arch: str = "auto") -> ForeignWeights:
    """torchvision or timm VGG state dict (vgg11 ... vgg19_bn) -> deepconv VGG state dict (pure: no file, no network
    built)."""
    batch_norm = any(k.startswith("features.") and k.endswith(".running_mean") for k in state)
    fc_names = HEADS[source]
    missing = [f"{n}.weight" for n in fc_names if f"{n}.weight" not in state]
    if missing:
        raise failure(f"not a {source} VGG state dict: no {missing[0]} (is --from right?)")
    sources = _conv_keys(state)
    shapes = [tuple(state[f"features.{i}.weight"].shape) for i in sources]
    arch = _infer_arch(shapes, arch, batch_norm)
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
            if batch_norm:  # the batch norm right after the convolution, running statistics included
                out |= _batch_norm(state, f"features.{src + 1}", f"features.{dst + 1}")
        for (name, shape), src in zip(head_shapes.items(), fc_names):
            out[f"classifier.{name}.weight"] = state[f"{src}.weight"].reshape(shape)
            out[f"classifier.{name}.bias"] = state[f"{src}.bias"]
    except (KeyError, RuntimeError) as e:  # a missing bias, an FC layer of the wrong size
        raise failure(f"not a {source} VGG state dict: {reason(e)}") from None
    return ForeignWeights(arch, out, num_classes, kernel * STRIDE)


def _batch_norm(state: dict[str, torch.Tensor], src: str, dst: str) -> dict[str, torch.Tensor]:
    """One BatchNorm2d's entries renamed; state dicts older than torch 0.4.1 lack `num_batches_tracked` (0 then)."""
    out = {f"{dst}.{key}": state[f"{src}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")}
    out[f"{dst}.num_batches_tracked"] = state.get(f"{src}.num_batches_tracked", torch.tensor(0))
    return out


WEIGHTS = WeightMap(tuple(HEADS), map_state_dict)  # A, B, D, E (torchvision/timm vgg11 ... vgg19, vgg11_bn ...)

NOTES = {
    "A": "8 conv + 3 FC; trained from random init, the source of deepening",
    "A-LRN": "A with AlexNet LRN after the first conv (paper: no gain)",
    "B": "10 conv + 3 FC",
    "B-shallow": "B with each pair of 3x3 convs replaced by one 5x5 (section 4.1)",
    "C": "D with a 1x1 conv as the last layer of blocks 3-5",
    "D": "13 conv + 3 FC (VGG-16)",
    "E": "16 conv + 3 FC (VGG-19)",
}
ALIASES = {"A": ("vgg11",), "B": ("vgg13",), "D": ("vgg16",), "E": ("vgg19",),
           "A-BN": ("vgg11_bn",), "B-BN": ("vgg13_bn",), "D-BN": ("vgg16_bn",), "E-BN": ("vgg19_bn",)}
TABLE_2 = {"A": "133 M", "A-LRN": "133 M", "B": "133 M", "B-shallow": "(section 4.1)", "C": "134 M", "D": "138 M",
           "E": "144 M"}


def _builder(arch: str):
    def build(num_classes: int, width: float, crop_size: int, dropout: float | None, init: str, init_std: float) -> VGG:
        return VGG(arch, num_classes, width, crop_size, dropout, init, init_std)

    return build


def _note(arch: str) -> str:
    config, batch_norm = base_config(arch)
    return f"{config} with batch norm after every conv (torchvision's layout)" if batch_norm else NOTES[arch]


SPECS = [
    ArchSpec(a, "VGG", _builder(a), ALIASES.get(a, ()), _note(a), 224, paper_params=TABLE_2.get(a, ""),
             weight_map=WEIGHTS if a in ALIASES else None, stride=STRIDE, title=f"VGG-{a}")
    for a in ARCHS + BN_ARCHS
]
