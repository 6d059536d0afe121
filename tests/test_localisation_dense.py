"""Dense localisation geometry (Table 9's protocol): each output location of the localiser's map is the crop-sized
window of the Q-rescaled image at (stride * column, stride * row), and a box predicted relative to that window
lands in original-image coordinates (window place, then divided by the Q scale factor). Checked against
hand-made networks whose windows are exact (no padding), so any offset, stride, scale or class slip shows."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from deepconv_cli.evaluation.dense import rescale_shorter, to_uint8_tensor
from deepconv_cli.localisation.boxes import decode
from deepconv_cli.localisation.dense import Localiser, locate, output_stride, scale_boxes, views


class WindowNet(nn.Module):
    """A 'network' that reads exactly one crop x crop window per output location, `stride` pixels apart."""

    def __init__(self, crop: int, stride: int, outputs: int, constant: list[float] | None = None) -> None:
        super().__init__()
        self.crop, self.stride = crop, stride
        self.conv = nn.Conv2d(3, outputs, crop, stride=stride)
        nn.init.normal_(self.conv.weight, 0.0, 1e-5)
        if constant is not None:  # every window predicts the same relative box
            nn.init.zeros_(self.conv.weight)
            self.conv.bias.data = torch.tensor(constant * (outputs // 4))

    def score_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_map(x).mean(dim=(2, 3))


def window_localiser(net: WindowNet, regression: str = "pcr") -> Localiser:
    meta = SimpleNamespace(crop_size=net.crop, classes=["a", "b", "c"])
    return Localiser(Path("fake.ckpt"), net, meta, regression, [0], output_stride(net, net.crop, torch.device("cpu")))


def picture(w: int = 80, h: int = 60) -> Image.Image:
    g = torch.Generator().manual_seed(0)
    return Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy())


@pytest.mark.parametrize("stride", [32, 16])
def test_output_stride_is_the_networks(stride):
    assert window_localiser(WindowNet(32, stride, 12)).stride == stride


def test_whole_window_box_is_the_window_in_original_pixels():
    """A localiser that always says 'the whole crop' (0.5, 0.5, 1, 1) returns, per location, its window: at Q = 70
    an 80 x 60 picture becomes 93 x 70 (factor 7/6); 32-pixel windows 32 apart give a 2 x 2 map."""
    loc = window_localiser(WindowNet(32, 32, 12, constant=[0.5, 0.5, 1.0, 1.0]))
    boxes, weights = scale_boxes(loc, None, picture(), 70, [1])
    f = 70 / 60
    expected = [[c * 32 / f, r * 32 / f, (c * 32 + 32) / f, (r * 32 + 32) / f] for r in range(2) for c in range(2)]
    assert boxes.shape == (1, 4, 4) and weights.tolist() == [[1.0] * 4]
    torch.testing.assert_close(boxes[0], torch.tensor(expected), atol=1e-4, rtol=0)
    # a box right of and below the window's centre stays right of and below it, by the same fraction of a crop
    shifted = window_localiser(WindowNet(32, 32, 4, constant=[0.75, 1.0, 0.5, 0.25]), "scr")
    b = scale_boxes(shifted, None, picture(), 70, [0, 2])[0]
    assert b[1, 3].tolist() == pytest.approx([(32 + 16) / f, (32 + 28) / f, (32 + 32) / f, (32 + 36) / f], abs=1e-4)
    assert torch.equal(b[0], b[1])  # SCR: one box for every class


@pytest.mark.parametrize("stride", [32, 16])
def test_each_location_equals_the_network_on_its_window(stride):
    """The dense box at location (r, c) is the network run on the crop at (stride * c, stride * r) of the
    Q-rescaled picture, decoded in that window and divided by the scale factor; PCR picks each class's four."""
    net = WindowNet(32, stride, 12)
    loc = window_localiser(net, "pcr")
    img, q, classes = picture(), 70, [2, 0]
    boxes = scale_boxes(loc, None, img, q, classes)[0]
    x = to_uint8_tensor(rescale_shorter(img, q))[None].float()
    rows, cols = (70 - 32) // stride + 1, (93 - 32) // stride + 1
    assert boxes.shape == (2, rows * cols, 4)
    f = q / 60
    for r in range(rows):
        for c in range(cols):
            top, left = r * stride, c * stride
            rel = net(x[..., top : top + 32, left : left + 32])[0].view(3, 4)
            for k, cls in enumerate(classes):
                want = decode(rel[cls], left / f, top / f, 32 / f)
                assert boxes[k, r * cols + c].tolist() == pytest.approx(want.tolist(), abs=1e-3)


def test_locate_merges_and_returns_the_heaviest_group():
    """All windows' boxes of one class merge into their average when they agree: a localiser that points every
    window at the same image-space spot gives exactly that spot."""

    class PointAt(WindowNet):
        def score_map(self, x):  # window (left, top) predicts the box x 10..30, y 5..25 of the 80 x 60 picture
            f = x.shape[-2] / 60  # the rescaled picture's shorter side is Q
            h, w = (x.shape[-2] - self.crop) // self.stride + 1, (x.shape[-1] - self.crop) // self.stride + 1
            left = torch.arange(w).view(1, w) * self.stride
            top = torch.arange(h).view(h, 1) * self.stride
            cx, cy = (20 * f - left) / self.crop + 0 * top, (15 * f - top) / self.crop + 0 * left
            size = torch.full((h, w), 20 * f / self.crop)
            return torch.stack([cx, cy, size, size])[None].repeat(1, 3, 1, 1).float()

    loc = window_localiser(PointAt(32, 32, 12))
    loc.scales = [60, 70]
    box = locate([loc], None, picture(), [0])[0]
    assert box.tolist() == pytest.approx([10.0, 5.0, 30.0, 25.0], abs=1e-3)
    assert F.mse_loss(locate([loc], None, picture(), [1])[0], box).item() < 1e-6


def test_flipped_pass_maps_boxes_back_from_the_mirror_image():
    """On the mirror image window c covers x 93 - 32c - 32 .. 93 - 32c of the 93-wide rescaled picture; a box in the
    right quarter of that window (cx = 0.75) is, unmirrored, in the left quarter of the same pixels."""
    f = 70 / 60
    whole = window_localiser(WindowNet(32, 32, 4, constant=[0.5, 0.5, 1.0, 1.0]), "scr")
    b = scale_boxes(whole, None, picture(), 70, [0], flip=True)[0][0]
    want = [[(93 - 32 * c - 32) / f, 32 * r / f, (93 - 32 * c) / f, (32 * r + 32) / f]
            for r in range(2) for c in range(2)]
    torch.testing.assert_close(b, torch.tensor(want), atol=1e-4, rtol=0)
    right = window_localiser(WindowNet(32, 32, 4, constant=[0.75, 0.5, 0.25, 1.0]), "scr")
    b = scale_boxes(right, None, picture(), 70, [0], flip=True)[0][0, 0]
    assert b.tolist() == pytest.approx([(93 - 28) / f, 0.0, (93 - 20) / f, 32 / f], abs=1e-4)  # mirror x 20..28


def test_offsets_place_windows_between_the_strides():
    """--offsets 2 with stride 32: passes shifted by 0 and 16 pixels per axis, so a 48-pixel picture (one window
    at Q = 48 without offsets) is seen through windows at 0 and 16 both ways, and with --flip mirrored as well."""
    loc = window_localiser(WindowNet(32, 32, 4, constant=[0.5, 0.5, 1.0, 1.0]), "scr")
    assert views(loc, 48) == [((0, 0), False)]
    loc.offsets, loc.flip = 2, True
    assert views(loc, 48) == [((dx, dy), m) for dy in (0, 16) for dx in (0, 16) for m in (False, True)]
    loc.offsets = 4  # shifts 0, 8, 16, 24: a 24-pixel shift leaves 24 < 32 pixels, so it is dropped
    assert sorted({s[0] for s, _ in views(loc, 48)}) == [0, 8, 16]
    square = picture(48, 48)
    assert scale_boxes(loc, None, square, 48, [0], shift=(16, 8))[0][0].tolist() == [[16.0, 8.0, 48.0, 40.0]]
    loc.offsets = 1
    assert scale_boxes(loc, None, square, 48, [0])[0][0].tolist() == [[0.0, 0.0, 32.0, 32.0]]
