"""Fast uint8 crops: the right size and region, the same pixels as resize-whole-then-crop, every decoder path."""

import random

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from deepconv_cli.data.transforms import (
    SNAP_MIN_BOX,
    CenterCropAt,
    ScaleJitterCrop,
    resized_crop,
    resized_crop_uint8,
    train_transform,
    val_transform,
)


def smooth_image(width: int = 500, height: int = 375, seed: int = 0) -> Image.Image:
    """Colour gradients plus mild noise: resampling differences show up as small grey-level errors."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) * 255 / (width + height)], -1)
    return Image.fromarray((rgb + rng.normal(0, 2, rgb.shape)).clip(0, 255).astype(np.uint8))


def saved(img: Image.Image, path, **kwargs) -> Image.Image:
    """The image written to `path` and reopened lazily, as the loaders see it."""
    img.save(path, **kwargs)
    return Image.open(path)


@pytest.mark.parametrize("seed", range(6))
def test_uint8_crop_equals_resize_whole_then_crop(seed):
    img = smooth_image()
    jitter = ScaleJitterCrop(256, 512, 224)
    random.seed(seed)
    s, left, top = jitter.params(img.size)
    fast = resized_crop_uint8(img, s, 224, left, top).permute(1, 2, 0).numpy().astype(np.float64)
    whole = img.resize((round(500 * s / 375), s), Image.Resampling.BILINEAR)
    slow = np.asarray(whole.crop((left, top, left + 224, top + 224)), dtype=np.float64)
    assert fast.shape == (224, 224, 3)
    assert np.abs(fast - slow).mean() < 1.5  # grey levels out of 255
    random.seed(seed + 100)  # a window elsewhere in the image is far off: the box maps to the right region
    _, left2, top2 = jitter.params(img.size)
    if abs(left2 - left) + abs(top2 - top) > 40:
        other = np.asarray(whole.crop((left2, top2, left2 + 224, top2 + 224)), dtype=np.float64)
        assert np.abs(fast - other).mean() > 5


def test_crop_lands_on_the_right_quadrant_of_a_jpeg(tmp_path):
    """Four flat quadrants, saved as JPEG: each corner crop at S = 300 has its quadrant's colour."""
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    pixels = np.zeros((375, 500, 3), np.uint8)
    pixels[:187, :250], pixels[:187, 250:], pixels[187:, :250], pixels[187:, 250:] = colours
    sw = 500 * 300 // 375
    corners = [(0, 0), (sw - 100, 0), (0, 300 - 100), (sw - 100, 300 - 100)]
    for colour, (left, top) in zip(colours, corners):
        img = saved(Image.fromarray(pixels), tmp_path / "q.jpg", quality=90)
        crop = resized_crop_uint8(img, 300, 100, left, top).float()
        centre = crop[:, 10:90, 10:90].mean(dim=(1, 2))
        torch.testing.assert_close(centre, torch.tensor(colour, dtype=torch.float32), atol=4, rtol=0)


@pytest.mark.parametrize("size,s", [((500, 375), 300), ((1000, 750), 256), ((2000, 1500), 256)])
def test_jpeg_file_path_gives_the_pil_decoders_pixels(tmp_path, size, s):
    """A JPEG file (simplejpeg, DCT-reduced when it shrinks >= 2x) crops to the same pixels as PIL decoding it."""
    smooth_image(*size).save(tmp_path / "a.jpg", quality=90)
    for left, top in ((0, 0), (17, 5)):
        fast = resized_crop_uint8(Image.open(tmp_path / "a.jpg"), s, 224, left, top)
        without_path = Image.open(tmp_path / "a.jpg")
        without_path.filename = ""  # no file to read: the PIL (draft) decoder
        assert torch.equal(fast, resized_crop_uint8(without_path, s, 224, left, top))


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P"])
def test_any_image_mode_gives_an_rgb_uint8_crop(tmp_path, mode):
    img = smooth_image().convert(mode)
    fmt = "PNG" if mode in ("RGBA", "P") else "JPEG"
    out = train_transform(256, 512, 224)(saved(img, tmp_path / f"x.{fmt.lower()}", format=fmt))
    assert out.shape == (3, 224, 224) and out.dtype == torch.uint8
    if mode == "L":  # grey in, grey out
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])


def test_small_boxes_use_the_exact_pil_resize():
    """Below SNAP_MIN_BOX source pixels (digits-sized images) the tensor crop is the exact fractional-box crop."""
    img = smooth_image(8, 8)
    assert 32 * 8 / 36 < SNAP_MIN_BOX
    fast = resized_crop_uint8(img, 36, 32, 2, 2)
    assert torch.equal(fast, TF.pil_to_tensor(resized_crop(img, 36, 32, 2, 2)))


def test_train_and_val_transforms_give_uint8_crops_and_flip(tmp_path):
    img = smooth_image()
    random.seed(0)
    torch.manual_seed(0)
    outs = [train_transform(256, 256, 224)(img) for _ in range(40)]
    assert all(o.shape == (3, 224, 224) and o.dtype == torch.uint8 for o in outs)
    # red grows left to right; a flipped crop has it falling
    slopes = [float(o[0, :, -20:].float().mean() - o[0, :, :20].float().mean()) for o in outs]
    assert min(slopes) < -10 and max(slopes) > 10
    centre = val_transform(300, 224)(img)
    exact = np.asarray(CenterCropAt(300, 224)(img), np.float64)
    assert np.abs(centre.permute(1, 2, 0).numpy() - exact).mean() < 1.5
