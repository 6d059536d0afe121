"""Batch norm folded into the convolution before it, for the traced exports (ONNX, TorchScript).

In evaluation a batch norm is a fixed per-channel affine map, y = (x - mean) / sqrt(var + eps) * gamma + beta, so
after a convolution it is the same convolution with rescaled weights and a shifted bias (torch's public
`fuse_conv_bn_eval`): one layer fewer to run and to store in the graph, the same scores up to float32 rounding,
which the export's own verification bounds. Only a batch norm that directly follows its convolution inside an
nn.Sequential is folded (`conv_norm_pairs`: there it certainly reads that output alone); any other stays.
"""

import copy

from torch import nn
from torch.nn.utils import fuse_conv_bn_eval

from deepconv_cli.models.layers import conv_norm_pairs

FOLDABLE = (nn.BatchNorm2d, nn.SyncBatchNorm)


def _foldable(module: nn.Module) -> list[tuple[nn.Sequential, int]]:
    return [(seq, i) for seq, i in conv_norm_pairs(module)
            if isinstance(seq[i + 1], FOLDABLE) and seq[i + 1].running_mean is not None]


def fold_batch_norms(module: nn.Module) -> tuple[nn.Module, int]:
    """`module` (in eval mode) with each foldable conv -> batch norm pair made one convolution, and how many were
    folded. With some to fold it is a copy and `module` itself stays unchanged; with none, `module` itself."""
    if not _foldable(module):
        return module.eval(), 0
    folded = copy.deepcopy(module).eval()
    pairs = _foldable(folded)
    for seq, i in pairs:
        seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
        seq[i + 1] = nn.Identity()
    return folded, len(pairs)
