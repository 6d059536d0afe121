"""Dense evaluation (VGG paper section 3.2): the fully convolutional net on the whole image rescaled to Q.

The class-score map is averaged spatially (sum-pooling up to a constant), turned into softmax posteriors, and
averaged with those of the horizontally flipped image. No crop, no square resize: any size and aspect ratio.
"""

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.precision import as_input


def rescale_shorter(img: Image.Image, q: int) -> Image.Image:
    """Isotropic rescale so that the shorter side is q (antialiased bilinear, like training's crop-box resize)."""
    w, h = img.size
    size = (max(q, round(w * q / min(w, h))), max(q, round(h * q / min(w, h))))
    return img.resize(size, Image.Resampling.BILINEAR)


def to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a uint8 CHW tensor (the form every loader in deepconv yields)."""
    return TF.pil_to_tensor(img.convert("RGB"))


@torch.inference_mode()
def dense_posteriors(model: Classifier, batch: torch.Tensor, flip: bool = True) -> torch.Tensor:
    """Softmax posteriors (N, classes) of a batch of same-size 0..255 images, flip-averaged when `flip`."""
    x = as_input(batch)
    probs = F.softmax(model(x).float(), dim=1)
    if flip:
        probs = (probs + F.softmax(model(torch.flip(x, dims=[3])).float(), dim=1)) / 2
    return probs


def model_device(model: Classifier) -> torch.device:
    return next(model.parameters()).device


def multiscale_dense_posteriors(
    model: Classifier, images: list[dict[int, torch.Tensor]], scales: list[int], flip: bool = True, batch_size: int = 32
) -> torch.Tensor:
    """Dense posteriors (N, classes) averaged over the test scales Q (section 4.3).

    `images[i][q]` is image i rescaled to shorter side q (uint8 CHW). At each Q the images are grouped by shape
    (bucketing), so equal-size images share a forward pass and no image is ever cropped or squared.
    """
    device = model_device(model)
    total = torch.zeros(len(images), model.num_classes, device=device)
    for q in scales:
        buckets: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):
            buckets.setdefault(tuple(img[q].shape), []).append(i)
        for members in buckets.values():
            for start in range(0, len(members), batch_size):
                idx = members[start : start + batch_size]
                batch = torch.stack([images[i][q] for i in idx]).to(device)
                total[idx] += dense_posteriors(model, batch, flip)
    return total / len(scales)
