"""Deepening (VGG paper section 3.1): initialise a deeper network from the layers of a trained shallower one.

"We began with training the configuration A, shallow enough to be trained with random initialisation. Then,
when training deeper architectures, we initialised the first four convolutional layers and the last three
fully-connected layers with the layers of net A (the intermediate layers were initialised randomly)."

Layers are matched by position in the architecture (the interface's `conv_positions` and `weight_layers`, so
any registered family deepens within itself): a convolution is identified by (block, index within block),
the blocks being separated by max-pooling, and the FC layers by name. A's first four convolutions are block 1
layer 1, block 2 layer 1, block 3 layers 1-2, and in B, C, D and E those positions hold layers of exactly the
same shape. Blocks are what the family declares (`Classifier.blocks`: VGG's come from Table 1, a ResNet's would
be its stages). A layer's normalisation (`Classifier.layer_norms`: the batch norm of VGG-BN) is copied with it,
weight, bias and running statistics. Nothing is frozen and no learning rate changes: this is initialisation only.
"""

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from deepconv_cli.models.interface import Classifier

Scheme = Literal["paper", "all"]
PAPER_CONV_LAYERS = 4


@dataclass
class CopyRow:
    target: str
    source: str
    shape: tuple[int, ...]
    copied: bool
    note: str = ""


def conv_positions(model: Classifier) -> list[tuple[str, tuple[int, int], nn.Module]]:
    """(name, (block, index in block), conv) for every trunk layer, in the blocks the family declares."""
    return model.conv_positions()


def _layer_map(target: Classifier, source: Classifier, scheme: Scheme) -> dict[str, tuple[str, nn.Conv2d, nn.Conv2d]]:
    """target layer name -> (source name, target module, source module) for the layers to copy."""
    t_head, s_head = target.head_layers(), source.head_layers()
    if len(t_head) != len(s_head):
        raise ValueError(f"{target.arch} and {source.arch} have different heads: deepening copies within a family")
    heads = {n: (n, t, s) for (n, t), (_, s) in zip(t_head, s_head)}
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


def _copy_rest(target: Classifier, source: Classifier) -> None:
    """'all': the parameters and buffers outside the weight layers (LeNet-5's subsampling coefficients, GoogLeNet's
    auxiliary classifiers, any norm layer's running statistics) are copied too, the input normalisation excepted;
    an auxiliary class-score layer stays random when the class count changes."""
    layer_params = {id(p) for _, m in target.weight_layers() for p in m.parameters()}
    s_params = dict(source.named_parameters()) | dict(source.named_buffers())
    new_classes = target.num_classes != source.num_classes
    rest = [*target.named_parameters(), *target.named_buffers()]
    for name, p in rest:
        if id(p) in layer_params or name.startswith("normalize."):
            continue
        if name in s_params and s_params[name].shape == p.shape:
            p.copy_(s_params[name])
        elif not (new_classes and p.shape[0] == target.num_classes):
            raise ValueError(f"cannot initialise {target.arch} {name} from {source.arch}: no parameter of that shape")


@torch.no_grad()
def initialise_from(target: Classifier, source: Classifier, scheme: Scheme = "paper") -> list[CopyRow]:
    """Copy weights and biases of the mapped layers from `source` into `target`; a shape mismatch is an error.

    Returns one row per target weight layer (copied or left at its random init), in order. When the class counts
    differ, the last layer keeps its random init and its row says why (loud partial loading, as DeiT's --finetune).
    """
    mapping = _layer_map(target, source, scheme)
    notes = {}
    last = target.last_layer()[0]
    if target.num_classes != source.num_classes:
        # a new label set (e.g. ImageNet weights fine-tuned on 10 classes): the classifier's last layer starts afresh
        notes[last] = f"{source.num_classes} -> {target.num_classes} classes"
        mapping.pop(last, None)
    t_norms, s_norms = target.layer_norms(), source.layer_norms()
    for t_name, (s_name, t, s) in mapping.items():
        if t.weight.shape != s.weight.shape:
            raise ValueError(
                f"cannot initialise {target.arch} {t_name} {tuple(t.weight.shape)} from {source.arch} {s_name} "
                f"{tuple(s.weight.shape)}: shapes differ (same width and crop size needed)"
            )
        if (t.bias is None) != (s.bias is None) or (s_name in s_norms and t_name not in t_norms):
            what = "a bias" if (t.bias is None) != (s.bias is None) else "a batch norm after it"
            raise ValueError(f"cannot initialise {target.arch} {t_name} from {source.arch} {s_name}: only one of them "
                             f"has {what}")
        if t_name in t_norms and s_name not in s_norms:
            notes[t_name] = "its norm layer starts afresh (none in the source)"
    if scheme == "all":
        _copy_rest(target, source)
    for t_name, (s_name, t, s) in mapping.items():
        t.weight.copy_(s.weight)
        if t.bias is not None:
            t.bias.copy_(s.bias)
        if t_name in t_norms and s_name in s_norms:  # weight, bias, running mean and variance, batches seen
            t_norms[t_name].load_state_dict(s_norms[s_name].state_dict())
    return [
        CopyRow(name, mapping[name][0] if name in mapping else "", tuple(m.weight.shape), name in mapping,
                notes.get(name, ""))
        for name, m in target.weight_layers()
    ]
