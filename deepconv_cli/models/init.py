"""Random initialisation of every layer: the paper's zero-mean normal, Glorot (its footnote) or Kaiming for the
weight layers; biases (where a layer has one) zero; normalisation layers weight 1, bias 0 under every scheme.

VGG paper section 3.1: weights from a zero-mean normal, biases zero. Its text gives variance 1e-2 (std 0.1),
while AlexNet and most ports use std 0.01; `init_std` chooses. After submission the authors found Glorot &
Bengio's init trains deep nets without pre-initialisation from net A; Kaiming (He et al.) is offered because
it is the usual choice for ReLU nets. A batch-normalised layer starts as the identity (weight 1, bias 0, as
torchvision and timm initialise theirs) and a convolution feeding one often has no bias (`bias=False`).
"""

from torch import nn

from deepconv_cli.models.layers import NORMS

INITS = ("normal", "glorot", "kaiming")


def init_weights(model: nn.Module, scheme: str = "normal", std: float = 0.01) -> None:
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; choose one of {', '.join(INITS)}")
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "normal":
                nn.init.normal_(m.weight, 0.0, std)
            elif scheme == "glorot":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(m, NORMS) and m.weight is not None:  # an affine norm layer starts as the identity
            nn.init.ones_(m.weight)
        else:
            continue
        if m.bias is not None:  # a convolution followed by a norm layer often has none (bias=False)
            nn.init.zeros_(m.bias)
