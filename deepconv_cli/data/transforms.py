"""The paper's training and validation preprocessing, done on the crop's source box only.

Training (VGG paper section 3.1): rescale isotropically so the shorter side is S (fixed, or drawn per image
from [Smin, Smax]), take a random crop, flip it at random. Rather than resizing the whole image to S and then
cropping, we pick the crop in S-space, map it back to a box in the original image and resize only that box.
Images stay uint8 until the device; the mean RGB and AlexNet's PCA colour shift are applied there
(`pca_color_shift`, `InputNorm`).

Two implementations of the same crop:
- `resized_crop` (PIL image out) resizes the exact, fractional box with PIL (antialiased like a full resize).
- `resized_crop_uint8` (uint8 CHW tensor out, what the loaders use) snaps a box of at least `SNAP_MIN_BOX`
  source pixels to whole pixels (a shift under half a source pixel, a scale within 1/128 of S) and resizes it
  with torch's vectorised uint8 antialiased bilinear kernel, about 2.5x faster than PIL's; JPEGs are decoded by
  libjpeg-turbo through simplejpeg straight into an array torch can view without a copy (PIL when simplejpeg
  is not installed or the JPEG is CMYK, EXIF-rotated or damaged). Both decoders skip detail the crop would throw
  away (DCT scaling by 1/2, 1/4, 1/8) when the image shrinks 2x or more; the finer 7/8..5/8 DCT scales are slower
  than a full decode in libjpeg-turbo, so they are not used. `deepconv benchmark loader` measures the result.
"""

import random

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from deepconv_cli.data.images import decode_rgb, orientation, oriented_size

try:
    import simplejpeg
except ImportError:  # optional speed-up; PIL decodes the same pixels (both are libjpeg-turbo)
    simplejpeg = None

SNAP_MIN_BOX = 64  # smaller boxes (tiny images) use the exact PIL resize: a whole-pixel snap would be visible


def jpeg_reduction(img: Image.Image, target_short: float) -> int:
    """The largest JPEG DCT reduction (1, 2, 4 or 8) that still leaves the shorter side >= target_short."""
    if img.format != "JPEG":
        return 1
    return next((d for d in (8, 4, 2) if target_short * d <= min(img.size)), 1)


def _decode(img: Image.Image, target_short: float) -> tuple[Image.Image, float]:
    """Upright RGB picture through the one reader (`to_rgb`), decoded at reduced size when a JPEG shrinks >= 2x;
    returns it and its scale to the original."""
    width = oriented_size(img)[0]  # before decoding: a JPEG draft changes img.size
    rgb = decode_rgb(img, jpeg_reduction(img, target_short))
    return rgb, rgb.size[0] / width


def decode_uint8(img: Image.Image, target_short: float, data: bytes | None = None) -> tuple[torch.Tensor, float]:
    """The one decoder to uint8: CHW tensor (HWC in memory) of the upright RGB image, reduced like `_decode`; and
    its scale to the original. `data`: the file's bytes when the caller already holds them (else read from the
    lazily opened file's path).

    simplejpeg decodes upright RGB/greyscale JPEGs (the same libjpeg-turbo pixels PIL gives); EXIF-rotated ones
    take the PIL path so that `to_rgb` turns them upright, as everywhere else."""
    w, h = img.size
    path = getattr(img, "filename", "")
    if simplejpeg is not None and img.format == "JPEG" and img.mode in ("RGB", "L") and (path or data is not None) \
            and orientation(img) == 1:
        factor = jpeg_reduction(img, target_short)
        if data is None:
            with open(path, "rb") as f:
                data = f.read()
        try:
            array = simplejpeg.decode_jpeg(data, "RGB", min_height=-(-h // factor), min_width=-(-w // factor))
        except ValueError:  # truncated or unusual JPEG: let PIL decode it (or report what is wrong with it)
            array = None
        if array is not None:
            img.close()  # the lazily opened file is no longer needed
            return torch.from_numpy(array).permute(2, 0, 1), array.shape[1] / w
    rgb, scale = _decode(img, target_short)
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1), scale


def crop_box(height: int, width: int, f: float, left: float, top: float, crop: int) -> tuple[int, int, int]:
    """The one crop-box formula: (x0, y0, side) in a height x width decoded image of the crop x crop window at
    (left, top) in S-space, `f` decoded pixels per S-space pixel, snapped to whole pixels and kept inside."""
    side = min(round(crop * f), height, width)
    return min(round(left * f), width - side), min(round(top * f), height - side), side


def resized_crop(img: Image.Image, short_side: float, crop: int, left: float, top: float) -> Image.Image:
    """The crop x crop window at (left, top) of `img` rescaled to shorter side `short_side`, resizing only its box."""
    rgb, decoded = _decode(img, short_side)
    w, h = img.size
    s = short_side / min(w, h)  # original -> S-space
    f = decoded / s  # S-space -> decoded image pixels
    box = (left * f, top * f, (left + crop) * f, (top + crop) * f)
    return rgb.resize((crop, crop), Image.Resampling.BILINEAR, box=box)


def resized_crop_uint8(img: Image.Image, short_side: float, crop: int, left: float, top: float) -> torch.Tensor:
    """`resized_crop` as a uint8 (3, crop, crop) tensor; boxes of >= SNAP_MIN_BOX pixels snap to whole pixels."""
    w, h = img.size
    if crop * min(w, h) / short_side < SNAP_MIN_BOX:
        return TF.pil_to_tensor(resized_crop(img, short_side, crop, left, top))
    x, decoded = decode_uint8(img, short_side)
    x0, y0, side = crop_box(*x.shape[1:], decoded * min(w, h) / short_side, left, top, crop)
    box = x[None, :, y0 : y0 + side, x0 : x0 + side]
    return F.interpolate(box, size=(crop, crop), mode="bilinear", antialias=True)[0]


class ScaleJitterCrop:
    """Shorter side to S ~ U{s_min..s_max}, then a uniformly placed crop x crop window (train); with `square`, the
    window lies in the central S x S square (AlexNet's 256 x 256 patch).

    Returns a PIL image, or a uint8 CHW tensor made by the faster `resized_crop_uint8` when `as_tensor`.
    """

    def __init__(self, s_min: int, s_max: int, crop: int, as_tensor: bool = False, square: bool = False) -> None:
        if not crop <= s_min <= s_max:
            raise ValueError(f"need crop <= s_min <= s_max, got crop={crop}, s_min={s_min}, s_max={s_max}")
        self.s_min, self.s_max, self.crop, self.as_tensor, self.square = s_min, s_max, crop, as_tensor, square

    def params(self, size: tuple[int, int]) -> tuple[int, float, float]:
        """(S, left, top) in S-space for an image of `size` = (w, h)."""
        w, h = size
        s = random.randint(self.s_min, self.s_max)
        sw, sh = w * s / min(w, h), h * s / min(w, h)
        if self.square:
            x0, y0 = int((sw - s) / 2), int((sh - s) / 2)
            return s, x0 + random.randint(0, s - self.crop), y0 + random.randint(0, s - self.crop)
        return s, random.randint(0, int(sw) - self.crop), random.randint(0, int(sh) - self.crop)

    def __call__(self, img: Image.Image) -> Image.Image | torch.Tensor:
        s, left, top = self.params(oriented_size(img))
        return (resized_crop_uint8 if self.as_tensor else resized_crop)(img, s, self.crop, left, top)


class CenterCropAt:
    """Shorter side to Q, then the central crop x crop window (the single-scale validation check).

    Returns a PIL image, or a uint8 CHW tensor made by the faster `resized_crop_uint8` when `as_tensor`.
    """

    def __init__(self, q: int, crop: int, as_tensor: bool = False) -> None:
        if q < crop:
            raise ValueError(f"test scale Q={q} is smaller than the crop {crop}")
        self.q, self.crop, self.as_tensor = q, crop, as_tensor

    def __call__(self, img: Image.Image) -> Image.Image | torch.Tensor:
        w, h = oriented_size(img)
        sw, sh = w * self.q / min(w, h), h * self.q / min(w, h)
        crop = resized_crop_uint8 if self.as_tensor else resized_crop
        return crop(img, self.q, self.crop, (sw - self.crop) / 2, (sh - self.crop) / 2)


def train_transform(s_min: int, s_max: int, crop: int, flip: bool = True, square: bool = False) -> v2.Compose:
    """A lazily opened PIL image -> a uint8 (3, crop, crop) scale-jittered, randomly flipped training crop."""
    steps = [ScaleJitterCrop(s_min, s_max, crop, as_tensor=True, square=square)]
    return v2.Compose(steps + ([v2.RandomHorizontalFlip()] if flip else []))


def val_transform(q: int, crop: int) -> v2.Compose:
    """A lazily opened PIL image -> the uint8 (3, crop, crop) central crop at scale Q."""
    return v2.Compose([CenterCropAt(q, crop, as_tensor=True)])


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
