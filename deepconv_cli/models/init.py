"""Random initialisation of the weight layers: the paper's zero-mean normal, Glorot (its footnote) or Kaiming.

VGG paper section 3.1: weights from a zero-mean normal, biases zero. Its text gives variance 1e-2 (std 0.1),
while AlexNet and most ports use std 0.01; `init_std` chooses. After submission the authors found Glorot &
Bengio's init trains deep nets without pre-initialisation from net A; Kaiming (He et al.) is offered because
it is the usual choice for ReLU nets.
"""

from torch import nn

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
            nn.init.zeros_(m.bias)
