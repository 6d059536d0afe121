"""Deepening (VGG paper section 3.1): initialise a deeper network from the layers of a trained shallower one.

"We began with training the configuration A, shallow enough to be trained with random initialisation. Then,
when training deeper architectures, we initialised the first four convolutional layers and the last three
fully-connected layers with the layers of net A (the intermediate layers were initialised randomly)."

Layers are matched by position in the architecture: a convolution is identified by (block, index within block),
the blocks being separated by max-pooling, and the FC layers by name. A's first four convolutions are block 1
layer 1, block 2 layer 1, block 3 layers 1-2, and in B, C, D and E those positions hold layers of exactly the
same shape. Nothing is frozen and no learning rate changes: this is initialisation only.
"""

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from deepconv_cli.models.vgg import VGG

Scheme = Literal["paper", "all"]
PAPER_CONV_LAYERS = 4


@dataclass
class CopyRow:
    target: str
    source: str
    shape: tuple[int, ...]
    copied: bool
    note: str = ""


def conv_positions(model: VGG) -> list[tuple[str, tuple[int, int], nn.Conv2d]]:
    """(name, (block, index in block), conv) for every convolution, blocks counted from 1 between poolings."""
    out, block, index, n = [], 1, 0, 0
    for m in model.features:
        if isinstance(m, nn.MaxPool2d):
            block, index = block + 1, 0
        elif isinstance(m, nn.Conv2d):
            n, index = n + 1, index + 1
            out.append((f"conv{n}", (block, index), m))
    return out


def _layer_map(target: VGG, source: VGG, scheme: Scheme) -> dict[str, tuple[str, nn.Conv2d, nn.Conv2d]]:
    """target layer name -> (source name, target module, source module) for the layers to copy."""
    heads = {n: (n, t, s) for (n, t), (_, s) in zip(target.weight_layers()[-3:], source.weight_layers()[-3:])}
    if scheme == "all":
        t_layers, s_layers = target.weight_layers(), source.weight_layers()
        if len(t_layers) != len(s_layers):
            raise ValueError(
                f"'all' layers needs the same architecture: target {target.arch} has {len(t_layers)} weight layers, "
                f"source {source.arch} has {len(s_layers)}"
            )
        return {tn: (sn, t, s) for (tn, t), (sn, s) in zip(t_layers, s_layers)}
    src = conv_positions(source)[:PAPER_CONV_LAYERS]
    by_pos = {pos: (name, conv) for name, pos, conv in conv_positions(target)}
    mapping = {}
    for s_name, pos, s_conv in src:
        if pos not in by_pos:
            raise ValueError(f"target {target.arch} has no convolution at block {pos[0]}, position {pos[1]}")
        t_name, t_conv = by_pos[pos]
        mapping[t_name] = (s_name, t_conv, s_conv)
    return mapping | heads


@torch.no_grad()
def initialise_from(target: VGG, source: VGG, scheme: Scheme = "paper") -> list[CopyRow]:
    """Copy weights and biases of the mapped layers from `source` into `target`; a shape mismatch is an error.

    Returns one row per target weight layer (copied or left at its random init), in order. When the class counts
    differ, fc3 keeps its random init and its row says why (loud partial loading, as DeiT's --finetune).
    """
    mapping = _layer_map(target, source, scheme)
    notes = {}
    if target.classifier.fc3.out_channels != source.classifier.fc3.out_channels:
        # a new label set (e.g. ImageNet weights fine-tuned on 10 classes): the classifier's last layer starts afresh
        notes["fc3"] = f"{source.classifier.fc3.out_channels} -> {target.classifier.fc3.out_channels} classes"
        mapping.pop("fc3")
    for t_name, (s_name, t, s) in mapping.items():
        if t.weight.shape != s.weight.shape:
            raise ValueError(
                f"cannot initialise {target.arch} {t_name} {tuple(t.weight.shape)} from {source.arch} {s_name} "
                f"{tuple(s.weight.shape)}: shapes differ (same width and crop size needed)"
            )
    for t_name, (s_name, t, s) in mapping.items():
        t.weight.copy_(s.weight)
        t.bias.copy_(s.bias)
    return [
        CopyRow(name, mapping[name][0] if name in mapping else "", tuple(m.weight.shape), name in mapping,
                notes.get(name, ""))
        for name, m in target.weight_layers()
    ]
