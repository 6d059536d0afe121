"""The two test protocols of Appendix A, on annotated validation images (a box is correct when IoU > 0.5):

- `centre_gt` (Table 8): the localiser sees the central crop at Q once; the box of the ground-truth class is
  compared with the image's boxes of that class.
- `dense_top5` (Table 9): the classifier's top-5 classes (dense, flip-averaged, at its test scales); for each,
  one box from the localisers applied densely at their scales Q (union, then greedy merging); the image counts
  as localised when one of the five is the true class with a correct box.
Both have a "whole image" baseline (the box is the image). Every image is counted exactly once (checked).
"""

from collections.abc import Callable

import torch
from torchvision.transforms.v2 import functional as TF

from deepconv_cli.data.annotations import Annotated
from deepconv_cli.data.transforms import resized_crop
from deepconv_cli.errors import failure
from deepconv_cli.localisation.boxes import clip, decode, iou
from deepconv_cli.localisation.data import centre_window
from deepconv_cli.localisation.dense import Localiser, classify, locate
from deepconv_cli.localisation.network import select_boxes

Progress = Callable[[], None] | None


def correct(box: torch.Tensor, truth: torch.Tensor, threshold: float = 0.5) -> bool:
    """ILSVRC rule: the box overlaps one of the ground-truth boxes with IoU above the threshold."""
    return bool(iou(box, truth).max() > threshold)


def whole_image(item: Annotated) -> torch.Tensor:
    return torch.tensor([0.0, 0.0, *item.size])


def counted_once(seen: list[str], items: list[Annotated]) -> int:
    """The number of images scored; stops when an image was scored twice or left out."""
    if len(seen) != len(set(seen)) or set(seen) != {item.path for item in items}:
        raise failure(f"scored {len(seen)} results for {len(items)} images: some image was counted twice or not at all")
    return len(seen)


@torch.inference_mode()
def centre_gt(loc: Localiser, items: list[Annotated], q: int | None = None, threshold: float = 0.5,
              batch_size: int = 64, step: Progress = None) -> dict:
    """Protocol 1: localisation error (%) and baseline error of the central crop at Q with the true class."""
    q = q or loc.scales[0]
    crop = loc.meta.crop_size
    device = next(loc.model.parameters()).device
    wrong = base_wrong = 0
    seen: list[str] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        crops, windows = [], []
        for item in chunk:
            left, top = centre_window(item.size, q, crop)
            with item.open() as img:
                crops.append(TF.pil_to_tensor(resized_crop(img, q, crop, left, top)))
            f = q / min(item.size)
            windows.append((left / f, top / f, crop / f))
        labels = torch.tensor([item.label for item in chunk], device=device)
        rel = select_boxes(loc.model(torch.stack(crops).to(device).float()), loc.regression, labels).cpu()
        for item, r, window in zip(chunk, rel, windows):
            wrong += not correct(clip(decode(r, *window), *item.size), item.boxes, threshold)
            base_wrong += not correct(whole_image(item), item.boxes, threshold)
            seen.append(item.path)
            if step:
                step()
    n = counted_once(seen, items)
    return {"loc_error": 100.0 * wrong / n, "baseline_error": 100.0 * base_wrong / n, "images": n, "test_q": [q]}


def dense_top5(localisers: list[Localiser], classifier, classifier_scales: list[int], items: list[Annotated],
               k: int = 5, threshold: float = 0.5, merge_iou: float = 0.5, step: Progress = None,
               rank: Callable | None = None) -> dict:
    """Protocol 2: top-k localisation error (%) of the fused localisers, and of whole-image boxes, over `items`.
    `rank(picture)` gives the class posteriors that choose the top k (default: `classifier` dense at its scales;
    the paper's own: its best classification system, fused nets, dense + multi-crop)."""
    wrong = base_wrong = cls_wrong = 0
    seen: list[str] = []
    for item in items:
        picture = item.open_rgb()
        posteriors = rank(picture) if rank else classify(classifier, picture, classifier_scales)
        top = posteriors.topk(k).indices.tolist()
        boxes = locate(localisers, classifier, picture, top, merge_iou)
        hits = [c == item.label and correct(box, item.boxes, threshold) for c, box in zip(top, boxes)]
        wrong += not any(hits)
        cls_wrong += item.label not in top
        base_wrong += not (item.label in top and correct(whole_image(item), item.boxes, threshold))
        seen.append(item.path)
        if step:
            step()
    n = counted_once(seen, items)
    return {"loc_error": 100.0 * wrong / n, "baseline_error": 100.0 * base_wrong / n,
            "classification_error": 100.0 * cls_wrong / n, "images": n}
