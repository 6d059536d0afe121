"""`data.decode_on: cuda`: training JPEGs decoded in batches on the GPU (nvJPEG through TorchCodec, the optional
`deepconv[gpu]` dependency), with the paper's augmentations unchanged.

The loader workers still draw every random parameter exactly as the CPU path does (`ScaleJitterCrop.params`:
S, then the crop's corner; then the flip as `RandomHorizontalFlip` draws it), read the file's bytes and send
them with those parameters; the device decodes the batch's JPEGs in one call, cuts each crop's source box
(snapped to whole pixels by the same rule as `resized_crop_uint8`) and resizes and flips the boxes together:
torch's antialiased bilinear resize written as two batched matrix products per group of boxes (`resize_boxes`),
so a batch costs a few kernels however many images it holds, not a resize call per image. The PCA colour shift
and the mean (mean RGB, or the mean image of `data.mean_image`) stay where they are: the module, on the device,
whichever path made the crops. Files the GPU path does not take (not JPEG, CMYK, EXIF-rotated, boxes under
`SNAP_MIN_BOX` pixels) are cropped by the CPU path in the worker and travel as finished crops in the same batch.

Tolerance against the CPU path, same parameters: where the CPU path decodes at full size (the image shrinks
less than 2x) the crops differ by at most 1 grey level (float vs torch's uint8 resize arithmetic); where it
decodes at 1/2..1/8 size in the DCT (the image shrinks 2x or more), the device decodes at full size and the
antialiased resize does the shrinking, so pixels differ a little more (mean absolute difference of a few grey
levels on photographs; tests/test_device_decode.py measures both).

torchvision 0.29 deprecates its image decoders in favour of TorchCodec, whose `decode_jpeg` decodes a batch in one
nvJPEG call. On the host (the CPU, a batch nvJPEG refuses, no TorchCodec installed) JPEGs are decoded by
simplejpeg, the CPU loader's decoder: on the loader benchmark's JPEGs, decoded at full size as here, it was the
fastest CPU decoder measured (docs/data.md).
"""

from dataclasses import dataclass

import simplejpeg
import torch
from PIL import Image

from deepconv_cli.data.images import orientation, oriented_size
from deepconv_cli.data.transforms import SNAP_MIN_BOX, ScaleJitterCrop, crop_box, resized_crop_uint8


@dataclass
class JpegCrop:
    """One training crop still to be made on the device: the file's bytes and the parameters drawn for it."""

    data: torch.Tensor  # 1-D uint8, the JPEG file
    params: tuple[float, float, float, bool]  # S, left, top (S-space), flip
    crop: int  # side of the crop to make


def takes(img: Image.Image, short_side: float, crop: int) -> bool:
    """Whether the device path decodes this lazily opened image (else the CPU path crops it in the worker)."""
    return (img.format == "JPEG" and img.mode in ("RGB", "L") and bool(getattr(img, "filename", ""))
            and orientation(img) == 1 and crop * min(img.size) / short_side >= SNAP_MIN_BOX)


class DeferredTrainCrop:
    """The training transform of `decode_on: cuda`: a `JpegCrop` for JPEGs, the CPU path's crop for the rest."""

    def __init__(self, s_min: int, s_max: int, crop: int, flip: bool = True, square: bool = False) -> None:
        self.jitter = ScaleJitterCrop(s_min, s_max, crop, as_tensor=True, square=square)
        self.crop, self.flip = crop, flip

    def __call__(self, img: Image.Image) -> JpegCrop | torch.Tensor:
        s, left, top = self.jitter.params(oriented_size(img))  # the CPU path's draws, in its order
        flipped = bool(torch.rand(1) < 0.5) if self.flip else False  # as v2.RandomHorizontalFlip draws it
        if not takes(img, s, self.crop):  # the CPU path's crop (what ScaleJitterCrop makes) at these parameters
            out = resized_crop_uint8(img, s, self.crop, left, top)
            return out.flip(-1) if flipped else out
        with open(img.filename, "rb") as f:
            data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
        img.close()
        return JpegCrop(data, (float(s), float(left), float(top), flipped), self.crop)


@dataclass
class DeferredBatch:
    """A training batch whose JPEG crops are made on the device (`make`): finished crops and labels move to the
    device like any batch, the JPEG bytes stay on the host (nvJPEG reads them from there)."""

    crops: torch.Tensor  # (N, 3, crop, crop) uint8; zeros where a JPEG crop goes
    labels: torch.Tensor
    jpegs: list[torch.Tensor]
    index: torch.Tensor  # position of each JPEG crop in the batch
    # S, left, top, flip per JPEG crop: Python floats, never a tensor, so that a precision plugin's input
    # conversion (bf16-true, 16-true cast every float tensor of a batch, dataclass fields included) cannot round them
    params: list[tuple[float, float, float, bool]]

    def to(self, device, **kwargs) -> "DeferredBatch":
        return DeferredBatch(self.crops.to(device, **kwargs), self.labels.to(device, **kwargs), self.jpegs,
                             self.index, self.params)

    def pin_memory(self) -> "DeferredBatch":
        return DeferredBatch(self.crops.pin_memory(), self.labels.pin_memory(), self.jpegs, self.index, self.params)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> torch.Tensor:  # batch[0] / batch[1], as for (crops, labels)
        return (self.crops, self.labels)[i]

    def make(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 crops, labels) on the crops' device, the JPEGs decoded and cropped there."""
        if self.jpegs:
            crop = self.crops.shape[-1]
            made = crops_from_jpegs(self.jpegs, self.params, crop, self.crops.device)
            self.crops[self.index.to(self.crops.device)] = made
        return self.crops, self.labels


def collate(samples: list[tuple[JpegCrop | torch.Tensor, int]]) -> DeferredBatch:
    """The loader's batches for `decode_on: cuda`."""
    jpeg = [i for i, (x, _) in enumerate(samples) if isinstance(x, JpegCrop)]
    first = samples[0][0]
    crop = first.crop if isinstance(first, JpegCrop) else first.shape[-1]
    crops = torch.zeros(len(samples), 3, crop, crop, dtype=torch.uint8)
    for i, (x, _) in enumerate(samples):
        if isinstance(x, torch.Tensor):
            crops[i] = x
    return DeferredBatch(
        crops, torch.tensor([y for _, y in samples]), [samples[i][0].data for i in jpeg],
        torch.tensor(jpeg, dtype=torch.long),
        [samples[i][0].params for i in jpeg],
    )


_fallback_said = False


def host_decode(jpegs: list[torch.Tensor]) -> list[torch.Tensor]:
    """JPEG byte tensors -> uint8 (3, H, W) RGB pictures, full size, decoded by simplejpeg (libjpeg-turbo)."""
    return [torch.from_numpy(simplejpeg.decode_jpeg(j.numpy(), "RGB")).permute(2, 0, 1) for j in jpegs]


def _decode(jpegs: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Decode on `device` in one nvJPEG call (TorchCodec); a batch nvJPEG refuses (an unusual JPEG), or any batch
    without TorchCodec, is decoded on the host instead and moved (said once)."""
    global _fallback_said
    if device.type == "cpu":
        return host_decode(jpegs)
    try:
        from torchcodec.decoders import decode_jpeg
    except ImportError:
        decode_jpeg, why = None, "TorchCodec is not installed: pip install 'deepconv[gpu]'"
    if decode_jpeg is not None:
        try:
            return decode_jpeg(jpegs, mode="RGB", device=device)
        except RuntimeError as e:
            why = f"a batch failed to decode on {device} ({str(e).splitlines()[0][:80]})"
    if not _fallback_said:
        _fallback_said = True
        print(f"data.decode_on cuda: {why}; such batches are decoded on the CPU")
    return [img.to(device) for img in host_decode(jpegs)]


RESIZE_GROUP = 32  # boxes resized per batched matrix product (sorted by side, so little zero padding)


def aa_weights(sizes: torch.Tensor, out: int, width: int) -> torch.Tensor:
    """(K, out, width) float32 matrices of torch's antialiased bilinear resize (`F.interpolate(..., "bilinear",
    antialias=True)`, PIL's triangle filter widened by the shrink factor, rows normalised) from each length
    sizes[k] to `out`; columns at or beyond sizes[k] are zero, so shorter inputs may be zero-padded to `width`."""
    n = sizes.to(torch.float64).view(-1, 1, 1)
    scale = n / out
    support = scale.clamp(min=1.0)  # the filter's half-width in input pixels (1 when enlarging)
    i = torch.arange(out, dtype=torch.float64, device=sizes.device).view(1, -1, 1)
    j = torch.arange(width, dtype=torch.float64, device=sizes.device).view(1, 1, -1)
    center = scale * (i + 0.5)
    w = (1 - ((j + 0.5 - center) / support).abs()).clamp(min=0)
    # torch's window, [int(center - support + 0.5), int(center + support + 0.5)) within the input
    inside = (j >= (center - support + 0.5).floor().clamp(min=0)) & (j < (center + support + 0.5).floor()) & (j < n)
    w = w * inside
    return (w / w.sum(-1, keepdim=True)).float()


def resize_boxes(boxes: list[torch.Tensor], crop: int, flips: list[bool]) -> torch.Tensor:
    """Square uint8 boxes (3, side_k, side_k) on one device -> float32 (K, 3, crop, crop), each resized as
    `F.interpolate(box, crop, "bilinear", antialias=True)` and mirrored where flips[k], in a few batched matrix
    products: out_k = Wy_k @ box_k @ Wx_k^T with the separable resize's weight matrices (the mirror folded into
    Wx_k). Boxes are sorted by side and resized RESIZE_GROUP at a time, zero-padded to the group's largest side.

    The products run in full fp32, torch's default on CUDA; with TF32 matrix products turned on
    (`torch.set_float32_matmul_precision("high")`) a pixel may move by a grey level."""
    device = boxes[0].device
    sides = torch.tensor([b.shape[-1] for b in boxes])
    order = sides.argsort().tolist()
    out = torch.empty(len(boxes), 3, crop, crop, dtype=torch.float32, device=device)
    for start in range(0, len(order), RESIZE_GROUP):
        group = order[start : start + RESIZE_GROUP]
        width = int(sides[group[-1]])
        padded = torch.zeros(len(group), 3, width, width, dtype=torch.float32, device=device)
        for k, g in enumerate(group):
            side = boxes[g].shape[-1]
            padded[k, :, :side, :side] = boxes[g]
        wy = aa_weights(sides[group].to(device), crop, width)  # (G, crop, width)
        mirror = torch.tensor([flips[g] for g in group], device=device).view(-1, 1, 1)
        wx = torch.where(mirror, wy.flip(1), wy)
        out[torch.tensor(group, device=device)] = wy.unsqueeze(1) @ padded @ wx.transpose(1, 2).unsqueeze(1)
    return out


def crops_from_jpegs(jpegs: list[torch.Tensor], params: list[tuple[float, float, float, bool]], crop: int,
                     device) -> torch.Tensor:
    """Decode `jpegs` (host byte tensors) on `device` in one call and make each (S, left, top, flip) crop there:
    uint8 (K, 3, crop, crop). The boxes are cut as views and resized together (`resize_boxes`, float32, rounded:
    CUDA has no uint8 antialiased kernel), so the same code is what a CPU test exercises."""
    images = _decode(jpegs, torch.device(device))
    boxes = []
    for img, (s, left, top, _) in zip(images, params, strict=True):
        height, width = img.shape[1:]
        x0, y0, side = crop_box(height, width, min(width, height) / s, left, top, crop)  # a full-size decode
        boxes.append(img[:, y0 : y0 + side, x0 : x0 + side])
    out = resize_boxes(boxes, crop, [bool(p[3]) for p in params])
    return out.round_().clamp_(0, 255).to(torch.uint8)
