"""The paper's training and validation preprocessing, done on the crop's source box only.

Training (VGG paper section 3.1): rescale isotropically so the shorter side is S (fixed, or drawn per image
from [Smin, Smax]), take a random crop, flip it at random. Rather than resizing the whole image to S and then
cropping, we pick the crop in S-space, map it back to a box in the original image and resize only that box
(PIL's `resize(box=...)`, antialiased like a full resize). For JPEGs that shrink by 2x or more, `draft()` lets
the decoder skip the detail it would throw away. Images stay uint8 until the device; the mean RGB and AlexNet's
PCA colour shift are applied there (`pca_color_shift`, `InputNorm`).
"""

import math
import random

import torch
from PIL import Image
from torchvision.transforms import v2


def _decode(img: Image.Image, target_short: float) -> tuple[Image.Image, float]:
    """RGB image, decoded at reduced size when a JPEG shrinks >= 2x; returns it and its scale to the original."""
    w, h = img.size
    if img.format == "JPEG" and target_short * 2 <= min(w, h):
        img.draft("RGB", (math.ceil(w * target_short / min(w, h)), math.ceil(h * target_short / min(w, h))))
    rgb = img.convert("RGB")  # greyscale, CMYK, RGBA, palette -> RGB; also forces the (possibly draft) decode
    return rgb, rgb.size[0] / w


def resized_crop(img: Image.Image, short_side: float, crop: int, left: float, top: float) -> Image.Image:
    """The crop x crop window at (left, top) of `img` rescaled to shorter side `short_side`, resizing only its box."""
    rgb, decoded = _decode(img, short_side)
    w, h = img.size
    s = short_side / min(w, h)  # original -> S-space
    f = decoded / s  # S-space -> decoded image pixels
    box = (left * f, top * f, (left + crop) * f, (top + crop) * f)
    return rgb.resize((crop, crop), Image.Resampling.BILINEAR, box=box)


class ScaleJitterCrop:
    """Shorter side to S ~ U{s_min..s_max}, then a uniformly placed crop x crop window (train)."""

    def __init__(self, s_min: int, s_max: int, crop: int) -> None:
        if not crop <= s_min <= s_max:
            raise ValueError(f"need crop <= s_min <= s_max, got crop={crop}, s_min={s_min}, s_max={s_max}")
        self.s_min, self.s_max, self.crop = s_min, s_max, crop

    def params(self, size: tuple[int, int]) -> tuple[int, float, float]:
        """(S, left, top) in S-space for an image of `size` = (w, h)."""
        w, h = size
        s = random.randint(self.s_min, self.s_max)
        sw, sh = w * s / min(w, h), h * s / min(w, h)
        return s, random.randint(0, int(sw) - self.crop), random.randint(0, int(sh) - self.crop)

    def __call__(self, img: Image.Image) -> Image.Image:
        s, left, top = self.params(img.size)
        return resized_crop(img, s, self.crop, left, top)


class CenterCropAt:
    """Shorter side to Q, then the central crop x crop window (the single-scale validation check)."""

    def __init__(self, q: int, crop: int) -> None:
        if q < crop:
            raise ValueError(f"test scale Q={q} is smaller than the crop {crop}")
        self.q, self.crop = q, crop

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        sw, sh = w * self.q / min(w, h), h * self.q / min(w, h)
        return resized_crop(img, self.q, self.crop, (sw - self.crop) / 2, (sh - self.crop) / 2)


def train_transform(s_min: int, s_max: int, crop: int, flip: bool = True) -> v2.Compose:
    steps = [ScaleJitterCrop(s_min, s_max, crop), v2.PILToTensor()]
    return v2.Compose(steps + ([v2.RandomHorizontalFlip()] if flip else []))


def val_transform(q: int, crop: int) -> v2.Compose:
    return v2.Compose([CenterCropAt(q, crop), v2.PILToTensor()])


def pca_color_shift(x: torch.Tensor, eigval: torch.Tensor, eigvec: torch.Tensor, std: float = 0.1) -> torch.Tensor:
    """AlexNet's colour augmentation on a float 0..255 batch: add P [a1 l1, a2 l2, a3 l3]^T, a_i ~ N(0, std).

    P (columns) and l are the eigenvectors and eigenvalues of the training set's RGB covariance with pixels in
    0..1 (AlexNet section 4.1); the shift is computed in that unit and scaled to 0..255. One draw per image.
    """
    if std <= 0 or eigval.numel() == 0:
        return x
    alpha = torch.randn(x.shape[0], 3, device=x.device, dtype=torch.float32) * std
    shift = (alpha * eigval.to(x.device)) @ eigvec.to(x.device).T * 255.0  # (N, 3)
    return x + shift.to(x.dtype).view(-1, 3, 1, 1)
