"""Multi-crop evaluation: the VGG paper's 5x5 grid (section 4.3), AlexNet's 10-crop (section 4.1), the centre crop.

Each image is rescaled once to shorter side Q (the same rescaled image dense evaluation sees); the crops are
windows of that image, each run through the net on its own (zero padding at the crop border, unlike dense
evaluation), and the softmax posteriors are averaged over crops, flips and scales.
"""

import torch
import torch.nn.functional as F

from deepconv_cli.evaluation.dense import model_device
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.precision import as_input

CROP_METHODS = ("multi-crop", "10-crop", "center")
GRID = 5  # the paper's 5x5 regular grid per scale


def grid_offsets(length: int, crop: int, n: int = GRID) -> list[int]:
    """n evenly spaced window starts along a side: the first at 0, the last at length - crop (edges covered)."""
    if length < crop:
        raise ValueError(f"image side {length} is smaller than the crop {crop}")
    return [round(i * (length - crop) / (n - 1)) for i in range(n)]


def crop_boxes(method: str, width: int, height: int, crop: int) -> list[tuple[int, int]]:
    """(left, top) of every crop window of `method` in a width x height image, flips not included."""
    if method == "multi-crop":
        return [(x, y) for y in grid_offsets(height, crop) for x in grid_offsets(width, crop)]
    right, bottom, cx, cy = width - crop, height - crop, (width - crop) // 2, (height - crop) // 2
    if method == "10-crop":
        return [(0, 0), (right, 0), (0, bottom), (right, bottom), (cx, cy)]
    if method == "center":
        return [(cx, cy)]
    raise ValueError(f"unknown crop method {method!r}; choose one of {', '.join(CROP_METHODS)}")


def crop_views(image: torch.Tensor, method: str, crop: int, flip: bool = True, square: bool = False) -> torch.Tensor:
    """The crops (V, C, crop, crop) of one CHW image: the windows, then their mirror images when `flip`.

    The centre crop is a single view (no flip); multi-crop gives 25 windows (50 views), 10-crop 5 (10 views).
    `square`: the windows are those of the image's central square (AlexNet's "four corner patches and the
    center patch" of the 256 x 256 image).
    """
    _, h, w = image.shape
    if square:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image, h, w = image[:, top : top + side, left : left + side], side, side
    views = torch.stack([image[:, t : t + crop, s : s + crop] for s, t in crop_boxes(method, w, h, crop)])
    if flip and method != "center":
        views = torch.cat([views, torch.flip(views, dims=[3])])
    return views


@torch.inference_mode()
def multiscale_crop_posteriors(
    model: Classifier,
    images: list[dict[int, torch.Tensor]],
    scales: list[int],
    method: str = "multi-crop",
    flip: bool = True,
    batch_size: int = 32,
    square: bool = False,
) -> torch.Tensor:
    """Posteriors (N, classes) averaged over every crop view of `method` and over the test scales Q.

    `images[i][q]` is image i rescaled to shorter side q (uint8 CHW); crops run `batch_size` at a time.
    """
    device, crop = model_device(model), model.crop_size
    total = torch.zeros(len(images), model.num_classes, device=device)
    for q in scales:
        views = [crop_views(img[q], method, crop, flip, square) for img in images]
        per_image = views[0].shape[0]  # the same for every image of every shape
        stacked = torch.cat(views)
        probs = torch.cat(
            [F.softmax(model(as_input(stacked[i : i + batch_size].to(device))).float(), dim=1)
             for i in range(0, len(stacked), batch_size)]
        )
        total += probs.view(len(images), per_image, -1).mean(dim=1)
    return total / len(scales)
