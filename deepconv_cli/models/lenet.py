"""LeNet-5 (LeCun et al. 1998; the handbook's section 0.9 table): 32x32 grey input, C1, S2, C3, S4, C5, F6, output.

C1 6@5x5 (156 parameters); S2 2x2/2 subsampling: the four inputs summed, times a trainable coefficient, plus a
trainable bias, per map (12); C3 16@5x5 with the original sparse connection table (maps 0-5 see 3 adjacent S2 maps,
6-11 see 4 adjacent, 12-14 see 4 non-adjacent, 15 sees all 6: 1,516 parameters); S4 (32); C5 120@5x5 on the 5x5
map (48,120), F6 84 (10,164), output 10 (850): 60,850 parameters with 10 classes. The activation is the original's
scaled tanh 1.7159 tanh(2x/3) (option "relu"); the output layer is fully connected, as in the handbook (the
original's RBF output layer is not offered). C5, F6 and the output form the conv-shaped head, so LeNet-5 runs
densely on larger images like the other networks.

C3's missing connections are not masked copies of a dense weight: only the 1,500 connected weights exist as a
parameter and are scattered into the (16, 6, 5, 5) kernel at each forward, so the others are exactly zero always.
Inputs: the RGB image's luma (InputNorm's grey mode) after mean subtraction, scaled by 1.275/255 as LeCun scaled
pixels to the range [-0.1, 1.175].
"""

import torch
import torch.nn.functional as F
from torch import nn

from deepconv_cli.models.heads import ConvHead
from deepconv_cli.models.interface import Classifier, feature_size
from deepconv_cli.models.spec import ArchSpec

# S2 -> C3 connections (the original paper's Table I): C3 map j reads the S2 maps listed
C3_TABLE = [(0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
            (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
            (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5)]
INPUT_SCALE = 1.275 / 255


def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    """LeCun's squashing function: 1.7159 tanh(2x/3)."""
    return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsample(nn.Module):
    """2x2/2 sum of the inputs, times a trainable coefficient, plus a trainable bias, per map (S2, S4)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), 0.25))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        summed = 4.0 * F.avg_pool2d(x, 2)
        return summed * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def describe(self) -> str:
        return "subsampling 2x2/2 (x coefficient + bias)"


class SparseConv(nn.Module):
    """A 5x5 convolution whose output map j sees only the input maps of `table[j]` (C3)."""

    is_weight_layer = True  # a weight layer of the network (deepening, the layer table) though not an nn.Conv2d

    def __init__(self, in_channels: int, table: list[tuple[int, ...]], kernel: int = 5) -> None:
        super().__init__()
        self.shape = (len(table), in_channels, kernel, kernel)
        connected = [j * in_channels + i in {j * in_channels + c for c in table[j]}
                     for j in range(len(table)) for i in range(in_channels)]
        # position in the full kernel -> 1 + index into `weight`, or 0 for "no connection" (a zero prepended);
        # built from Python lists so that the network can also be built on the meta device (counts, shapes)
        index, n = [], 0
        for on in connected:
            for _ in range(kernel * kernel):
                n += on
                index.append(n if on else 0)
        self.register_buffer("index", torch.tensor(index), persistent=False)
        self.register_buffer("mask", torch.tensor(connected).view(len(table), in_channels), persistent=False)
        self.fans = [kernel * kernel * len(table[j]) for j in range(len(table)) for _ in range(kernel * kernel
                     * len(table[j]))]  # each connected weight's unit fan-in, in `weight` order
        self.weight = nn.Parameter(torch.empty(n))
        self.bias = nn.Parameter(torch.zeros(len(table)))
        self.in_channels, self.out_channels, self.kernel_size, self.stride = (
            in_channels, len(table), (kernel,) * 2, (1,)
        )

    def fan_in(self) -> torch.Tensor:
        """Each connected weight's unit fan-in (25 x the input maps its output map reads)."""
        return torch.tensor(self.fans, dtype=self.weight.dtype, device=self.weight.device)

    def full_weight(self) -> torch.Tensor:
        """The (out, in, k, k) kernel: connected weights in place, exact zeros elsewhere."""
        return torch.cat([self.weight.new_zeros(1), self.weight])[self.index].view(self.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.full_weight(), self.bias)

    def describe(self) -> str:
        return f"sparse conv {self.kernel_size[0]}x{self.kernel_size[1]}/1, {self.out_channels} (connection table)"


class Scale(nn.Module):
    """A fixed factor (LeCun's input range); no parameters."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class Activation(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class LeNet5(Classifier):
    table_blocks = (SparseConv, Subsample)

    def __init__(self, num_classes: int = 10, width: float = 1.0, crop_size: int = 32, dropout: float | None = 0.0,
                 init: str = "paper", init_std: float = 0.01, activation: str = "tanh") -> None:
        super().__init__("lenet5", crop_size, grey=True)
        if activation not in ("tanh", "relu"):
            raise ValueError(f"LeNet-5 activation must be 'tanh' (scaled, the original) or 'relu', got {activation!r}")
        fn = scaled_tanh if activation == "tanh" else F.relu
        if width != 1.0:
            raise ValueError("LeNet-5 has one width (its connection table fixes C3): leave width at 1")
        self.features = nn.Sequential(
            Scale(INPUT_SCALE), nn.Conv2d(1, 6, 5), Activation(fn), Subsample(6), Activation(fn),
            SparseConv(6, C3_TABLE), Activation(fn), Subsample(16), Activation(fn),
        )
        channels, h, _ = feature_size(self.features, 1, crop_size)
        if h < 1:
            raise ValueError(f"crop_size {crop_size} is too small for LeNet-5 (32 in the paper)")
        self.classifier = ConvHead(channels, h, [120, 84], num_classes, dropout or 0.0, activation=fn)
        self.reset_parameters(init, init_std)

    @torch.no_grad()
    def reset_parameters(self, init: str, init_std: float) -> None:
        """"paper": LeCun's U(-2.4/F, 2.4/F), F the fan-in of the weight's unit; "normal": N(0, init_std);
        "glorot" / "kaiming" from the mean fan-in. Biases zero."""
        for _, layer in self.weight_layers():
            if isinstance(layer, SparseConv):
                fan_in = layer.fan_in()
            else:
                fan_in = torch.full_like(layer.weight, float(layer.weight[0].numel()))
            if init == "paper":
                layer.weight.copy_((torch.rand_like(layer.weight) * 2 - 1) * 2.4 / fan_in)
            elif init == "normal":
                nn.init.normal_(layer.weight, 0.0, init_std)
            elif init == "glorot":
                bound = (6.0 / (float(fan_in.mean()) + layer.out_channels * 25)) ** 0.5
                nn.init.uniform_(layer.weight, -bound, bound)
            else:
                nn.init.normal_(layer.weight, 0.0, (2.0 / float(fan_in.mean())) ** 0.5)
            nn.init.zeros_(layer.bias)


def _lenet(num_classes: int, width: float, crop_size: int, dropout: float | None, init: str, init_std: float,
           activation: str = "tanh") -> LeNet5:
    return LeNet5(num_classes, width, crop_size, dropout, init, init_std, activation)


SPECS = [ArchSpec("lenet5", "LeNet", _lenet, ("lenet-5", "lenet"), "32x32 grey, sparse C3, scaled tanh", 32,
                  paper_params="60,850 (10 classes)", stride=4, title="LeNet-5")]  # S2, S4: 2x2/2
