"""Box arithmetic of Appendix A: IoU, the (centre x, centre y, width, height) encoding relative to a crop, and
OverFeat's greedy merging (Sermanet et al. 2014) of the boxes a network predicts densely over an image.

Boxes in image space are (x0, y0, x1, y1) in continuous pixel coordinates (0..W, 0..H). A window is the square
(left, top, side) that a crop covers in the same space; the network's 4 numbers are the box's centre, width and
height in units of that side, measured from the window's top-left corner (so 0.5, 0.5, 1, 1 is the whole crop).
"""

from dataclasses import dataclass

import torch


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of every box in `a` (n, 4) with every box in `b` (m, 4): an (n, m) matrix."""
    a, b = a.float().reshape(-1, 4), b.float().reshape(-1, 4)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(dim=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def encode(box: torch.Tensor, left: float, top: float, side: float) -> torch.Tensor:
    """Image-space (..., 4) boxes -> (cx, cy, w, h) relative to the window (left, top, side)."""
    x0, y0, x1, y1 = box.float().unbind(-1)
    return torch.stack([((x0 + x1) / 2 - left) / side, ((y0 + y1) / 2 - top) / side, (x1 - x0) / side,
                        (y1 - y0) / side], dim=-1)


def decode(rel: torch.Tensor, left: float | torch.Tensor, top: float | torch.Tensor,
           side: float | torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h) relative to the window (left, top, side) -> image-space (x0, y0, x1, y1); broadcasts."""
    cx, cy, w, h = rel.float().unbind(-1)
    w, h = w.abs(), h.abs()  # a regressor may output a negative size early in training: read it as its magnitude
    cx, cy = left + cx * side, top + cy * side
    return torch.stack([cx - w * side / 2, cy - h * side / 2, cx + w * side / 2, cy + h * side / 2], dim=-1)


def flip_encoded(rel: torch.Tensor) -> torch.Tensor:
    """The encoding of the same box in the horizontally mirrored crop: cx -> 1 - cx."""
    out = rel.clone()
    out[..., 0] = 1 - out[..., 0]
    return out


def clip(box: torch.Tensor, width: float, height: float) -> torch.Tensor:
    """Boxes clipped to the image (0..width, 0..height)."""
    out = box.float().clone()
    out[..., 0::2] = out[..., 0::2].clamp(0, width)
    out[..., 1::2] = out[..., 1::2].clamp(0, height)
    return out


@dataclass
class Merged:
    """One group of merged boxes: its average box, the sum of its members' weights and how many there are."""

    box: torch.Tensor
    weight: float
    count: int


def greedy_merge(boxes: torch.Tensor, weights: torch.Tensor | None = None, min_iou: float = 0.5) -> list[Merged]:
    """OverFeat's greedy merging: repeatedly merge the two closest groups (highest IoU of their average boxes)
    while that IoU exceeds `min_iou`; a group's box is the average of its members' coordinates.

    Returns the groups, heaviest first (sum of member weights; each box weighs 1 when `weights` is None).
    """
    boxes = boxes.float().reshape(-1, 4)
    n = len(boxes)
    if n == 0:
        return []
    sums = boxes.clone()
    counts = torch.ones(n)
    mass = weights.float().reshape(-1).clone() if weights is not None else torch.ones(n)
    alive = list(range(n))
    while len(alive) > 1:
        means = sums[alive] / counts[alive, None]
        overlap = iou(means, means)
        overlap.fill_diagonal_(-1.0)
        best = int(overlap.argmax())
        i, j = divmod(best, len(alive))
        if float(overlap[i, j]) <= min_iou:
            break
        keep, gone = alive[min(i, j)], alive[max(i, j)]
        sums[keep] += sums[gone]
        counts[keep] += counts[gone]
        mass[keep] += mass[gone]
        alive.remove(gone)
    groups = [Merged(sums[k] / counts[k], float(mass[k]), int(counts[k])) for k in alive]
    return sorted(groups, key=lambda g: (-g.weight, -g.count))
