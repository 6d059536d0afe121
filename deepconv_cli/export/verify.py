"""An export checks itself: the artefact, loaded afresh, must give PyTorch's class scores on two input sizes.

Tolerance: the largest absolute score difference must not exceed TOLERANCE x max(1, largest |score|), i.e. 1e-4
absolute for scores below 1 and 1e-4 relative above. float32 reorderings (conv vs matmul, onnxruntime's kernels)
stay near 1e-6; a wrong layer, weight or normalisation is off by orders of magnitude more.
"""

from collections.abc import Callable

import torch

from deepconv_cli.errors import failure

TOLERANCE = 1e-4


def probe_shapes(crop: int, fixed_size: bool, stride: int) -> list[tuple[int, int, int, int]]:
    """A square crop-sized batch of 1 and a non-square batch of 2 (H, W not multiples of the network's stride, the
    registry's `ArchSpec.stride`)."""
    if fixed_size:
        return [(1, 3, crop, crop), (2, 3, crop, crop)]
    return [(1, 3, crop, crop), (2, 3, crop + stride + 3, crop + 2 * stride + 5)]


def score_difference(
    reference: Callable[[torch.Tensor], torch.Tensor],
    candidate: Callable[[torch.Tensor], torch.Tensor],
    shape: tuple[int, int, int, int],
) -> float:
    """max |candidate - reference| / max(1, max |reference|) on one random 0..255 batch."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape))) * 255
    with torch.inference_mode():
        ref, got = reference(x), candidate(x)
    if got.shape != ref.shape:
        raise failure(f"exported model returns shape {tuple(got.shape)} for input {shape}, PyTorch {tuple(ref.shape)}")
    return (got.float() - ref.float()).abs().max().item() / max(1.0, ref.abs().max().item())


def verify(
    reference: Callable[[torch.Tensor], torch.Tensor],
    candidate: Callable[[torch.Tensor], torch.Tensor],
    crop: int,
    stride: int,
    fixed_size: bool = False,
) -> dict[str, float]:
    """Differences per probed input size ("NxCxHxW" -> difference); a one-line failure when any exceeds TOLERANCE."""
    result = {}
    for shape in probe_shapes(crop, fixed_size, stride):
        name = "x".join(map(str, shape))
        result[name] = diff = score_difference(reference, candidate, shape)
        if not diff <= TOLERANCE:
            raise failure(
                f"exported model differs from PyTorch by {diff:.2e} (tolerance {TOLERANCE:g}) on a {name} input; "
                "nothing was written"
            )
    return result
