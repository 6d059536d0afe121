"""Dense box prediction (Appendix A.1, second protocol): the localiser applied to the whole image at test scales Q,
one box per output location (and class for PCR), pooled over scales and localisers and greedily merged.

Each location of the output map sees one crop-sized window of the rescaled image; the window's place is the
location times the network's output stride (measured once per network by running it on a 2-crop-wide input).
A box's weight is the classifier's softmax probability of that class at the same location and scale when the
classifier's map has the same shape (OverFeat weighs boxes by the class score of their window), else 1.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from deepconv_cli.errors import usage
from deepconv_cli.evaluation.dense import dense_posteriors, rescale_shorter, to_uint8_tensor
from deepconv_cli.localisation.boxes import clip, decode, greedy_merge
from deepconv_cli.localisation.network import load_localiser
from deepconv_cli.models.checkpoint import ModelMeta


@dataclass
class Localiser:
    """A loaded localisation network, its test scales, its output stride in pixels and its dense passes per scale
    (`offsets` per axis, each also mirrored when `flip`; see `views`)."""

    path: Path
    model: nn.Module
    meta: ModelMeta
    regression: str
    scales: list[int]
    stride: float
    offsets: int = 1
    flip: bool = False
    train_layers: str = "all"  # what was fine-tuned for localisation: all layers or fc (Table 8)

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}" if self.path.parent.name else self.path.stem


@torch.inference_mode()
def output_stride(model: nn.Module, crop: int, device: torch.device) -> float:
    """Pixels between neighbouring output locations: a 2crop x 2crop input gives an m x m map, stride crop/(m-1)."""
    m = model.score_map(torch.zeros(1, 3, 2 * crop, 2 * crop, device=device)).shape[-1]
    return crop / (m - 1) if m > 1 else float(crop)


def load_localisers(paths: list[str], scales: list[list[int]] | None, device: torch.device, offsets: int = 1,
                    flip: bool = False) -> list[Localiser]:
    """Every localiser with its test scales (one list for all, one per localiser, or its training S by default)."""
    if offsets < 1:
        raise usage(f"--offsets must be at least 1, got {offsets}")
    if scales and len(scales) not in (1, len(paths)):
        raise usage(f"give --scales once, or once per --ckpt ({len(paths)}), not {len(scales)} times")
    out = []
    for i, path in enumerate(paths):
        model, meta, info = load_localiser(path)
        qs = (scales[i if len(scales) > 1 else 0] if scales else [(meta.s_min + meta.s_max) // 2])
        if min(qs) < meta.crop_size:
            raise usage(f"test scale Q={min(qs)} is smaller than {path}'s crop size {meta.crop_size}")
        model = model.to(device)
        stride = output_stride(model, meta.crop_size, device)
        out.append(Localiser(Path(path), model, meta, info["regression"], qs, stride, offsets, flip,
                             info.get("train_layers", "all")))
    first = out[0].meta.classes
    if any(loc.meta.classes != first for loc in out[1:]):
        raise usage("the localisers were trained on different classes; fusion needs the same classes")
    return out


@torch.inference_mode()
def classify(classifier: nn.Module, img: Image.Image, scales: list[int]) -> torch.Tensor:
    """Dense, flip-averaged class posteriors (classes,) over `scales`, as `evaluate --method dense`."""
    device = next(classifier.parameters()).device
    total = sum(dense_posteriors(classifier, to_uint8_tensor(rescale_shorter(img, q))[None].to(device))[0]
                for q in scales)
    return total.cpu() / len(scales)


@torch.inference_mode()
def scale_boxes(loc: Localiser, classifier: nn.Module | None, img: Image.Image, q: int, classes: list[int],
                shift: tuple[int, int] = (0, 0), flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-space boxes (len(classes), locations, 4) and their weights (len(classes), locations) at scale Q.

    Location (r, c) of the map is the crop-sized window at (dx + stride * c, dy + stride * r) of the Q-rescaled
    image with its first `shift` = (dx, dy) columns and rows cut off (OverFeat's offsets), of its mirror image
    when `flip`; its box, relative to that window, is put back there and divided by the Q scale factor.
    """
    device = next(loc.model.parameters()).device
    x = to_uint8_tensor(rescale_shorter(img, q))[None].to(device).float()
    width, f = x.shape[-1], q / min(img.size)  # f: original pixels -> Q-space
    x = torch.flip(x, dims=[3]) if flip else x
    dx, dy = shift
    x = x[..., dy:, dx:]
    out = loc.model.score_map(x)[0]  # (outputs, h, w)
    h, w = out.shape[-2:]
    rel = out.view(-1, 4, h, w).permute(0, 2, 3, 1)  # (groups, h, w, 4)
    rel = rel[classes] if loc.regression == "pcr" else rel[:1].expand(len(classes), h, w, 4)
    left = (dx + torch.arange(w, device=device) * loc.stride).view(1, 1, w)
    top = (dy + torch.arange(h, device=device) * loc.stride).view(1, h, 1)
    boxes = decode(rel, left, top, float(loc.meta.crop_size))
    if flip:  # back from the mirror image: x -> width - x, the corners swap
        boxes = torch.stack([width - boxes[..., 2], boxes[..., 1], width - boxes[..., 0], boxes[..., 3]], dim=-1)
    weights = torch.ones(len(classes), h, w, device=device)
    if classifier is not None and hasattr(classifier, "score_map"):  # an exported classifier gives scores only
        probs = F.softmax(classifier.score_map(x), dim=1)[0]
        if probs.shape[-2:] == (h, w):
            weights = probs[classes]
    return (boxes / f).reshape(len(classes), -1, 4).cpu(), weights.reshape(len(classes), -1).cpu()


def views(loc: Localiser, q: int) -> list[tuple[tuple[int, int], bool]]:
    """(shift, flip) of every dense pass at scale Q: `loc.offsets` shifts per axis, stride / offsets apart (the
    offsets of OverFeat, which the VGG paper did not use: 1 is its plain map), each also on the mirror image when
    `loc.flip`; shifts that leave less than a crop are dropped."""
    steps = sorted({round(i * loc.stride / loc.offsets) for i in range(loc.offsets)})
    fits = [d for d in steps if q - d >= loc.meta.crop_size]
    return [((dx, dy), m) for dy in fits for dx in fits for m in ((False, True) if loc.flip else (False,))]


def locate(localisers: list[Localiser], classifier: nn.Module | None, img: Image.Image, classes: list[int],
           merge_iou: float = 0.5) -> torch.Tensor:
    """One box (len(classes), 4) per class: the union of every localiser's boxes at its scales (and shifts and
    flips), greedily merged, the heaviest group's average box, clipped to the image."""
    parts = [scale_boxes(loc, classifier, img, q, classes, shift, m) for loc in localisers for q in loc.scales
             for shift, m in views(loc, q)]
    boxes = torch.cat([b for b, _ in parts], dim=1)
    weights = torch.cat([w for _, w in parts], dim=1)
    best = [greedy_merge(boxes[i], weights[i], merge_iou)[0].box for i in range(len(classes))]
    return clip(torch.stack(best), *img.size)
