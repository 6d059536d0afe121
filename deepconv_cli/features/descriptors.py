"""Appendix B's image descriptor: the penultimate layer applied densely, global average pooled, flip-averaged,
combined over scales (average or stack), L2-normalised; several networks (or regions: image and box) stacked."""

import torch
import torch.nn.functional as F

from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.precision import ALIASES, autocast

AGGREGATES = ("average", "stack", "max")  # across scales: mean, concatenation, element-wise max


def descriptor_map(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    """(N, D, h, w): the layer before the classifier, after its non-linearity, applied densely (VGG: FC2 as a
    1x1 convolution; networks without FC layers: the map that feeds the classifier layer)."""
    return model.descriptor_map(x)


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit Euclidean length (all-zero rows stay zero)."""
    return F.normalize(x.float(), p=2.0, dim=1)


@torch.inference_mode()
def pooled_descriptors(model: Classifier, batch: torch.Tensor, flip: bool = True, bf16: bool = False) -> torch.Tensor:
    """(N, D) float32 of a batch of same-size 0..255 images: the descriptor map averaged over all positions, then
    averaged with the horizontally flipped image's (when `flip`)."""
    x = batch.float()
    with autocast(x.device, ALIASES["bf16" if bf16 else "fp32"]):  # the context evaluate's forward passes run in
        out = descriptor_map(model, x).float().mean(dim=(2, 3))
        if flip:
            out = (out + descriptor_map(model, torch.flip(x, dims=[3])).float().mean(dim=(2, 3))) / 2
    return out


def model_descriptors(
    model: Classifier,
    images: list[dict[int, torch.Tensor]],
    scales: list[int],
    aggregate: str = "average",
    flip: bool = True,
    batch_size: int = 32,
    bf16: bool = False,
) -> torch.Tensor:
    """(N, D) for `average` or (N, D x len(scales)) for `stack`, L2-normalised, on the CPU.

    `images[i][q]` is image i rescaled to shorter side q (uint8 CHW); equal-size images share a forward pass.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    device = next(model.parameters()).device
    per_scale = []
    for q in scales:
        buckets: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):
            buckets.setdefault(tuple(img[q].shape), []).append(i)
        out: torch.Tensor | None = None
        for members in buckets.values():
            for start in range(0, len(members), batch_size):
                idx = members[start : start + batch_size]
                d = pooled_descriptors(model, torch.stack([images[i][q] for i in idx]).to(device), flip, bf16).cpu()
                if out is None:
                    out = torch.zeros(len(images), d.shape[1])
                out[idx] = d
        per_scale.append(out)
    if aggregate == "stack":
        combined = torch.cat(per_scale, dim=1)
    else:
        combined = torch.stack(per_scale).amax(dim=0) if aggregate == "max" else torch.stack(per_scale).mean(dim=0)
    return l2_normalise(combined)


def fused_descriptors(
    models: list[tuple[Classifier, list[int]]],
    images: list[dict[int, torch.Tensor]],
    aggregate: str = "average",
    flip: bool = True,
    batch_size: int = 32,
    bf16: bool = False,
) -> torch.Tensor:
    """Late fusion: each (model, its scales) gives an L2-normalised descriptor; they are stacked and the result
    L2-normalised again, so every network weighs the same."""
    return stacked([model_descriptors(m, images, qs, aggregate, flip, batch_size, bf16) for m, qs in models])


def stacked(parts: list[torch.Tensor]) -> torch.Tensor:
    """L2-normalised descriptors side by side, normalised again (each part weighs the same); one part as it is.
    Late fusion of networks, and Table 12's setting (ii): the whole image's descriptor and its box's."""
    return parts[0] if len(parts) == 1 else l2_normalise(torch.cat(parts, dim=1))


def raw_pixel_descriptors(images: list[torch.Tensor]) -> torch.Tensor:
    """The baseline descriptor: the image's RGB pixels (already resized to a fixed square), flattened, centred on
    their own mean and L2-normalised, so the SVM sees raw pixels through the same normalisation as deep ones."""
    x = torch.stack(images).float().flatten(1)
    return l2_normalise(x - x.mean(dim=1, keepdim=True))
