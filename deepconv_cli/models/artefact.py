"""A loaded artefact: something that maps a 0..255 RGB NCHW float batch to class scores, and its metadata."""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from deepconv_cli.models.checkpoint import ModelMeta


@dataclass
class Artefact:
    """`scores(x) -> (N, classes)`; `fixed_size`: the graph takes only crop_size x crop_size inputs."""

    scores: Callable[[torch.Tensor], torch.Tensor]
    meta: ModelMeta
    kind: str
    fixed_size: bool = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.scores(x)
