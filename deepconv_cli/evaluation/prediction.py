"""Class posteriors of one picture from any artefact: dense evaluation at each test scale, flip-averaged, then
averaged over the scales (VGG paper sections 3.2 and 4.2), exactly as `evaluate`'s dense method does it."""

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from deepconv_cli.errors import usage
from deepconv_cli.evaluation.dense import dense_posteriors, rescale_shorter, to_uint8_tensor
from deepconv_cli.evaluation.scales import parse_scales
from deepconv_cli.models.artefact import Artefact
from deepconv_cli.models.checkpoint import ModelMeta


def resolve_scales(meta: ModelMeta, scales: str | None) -> list[int]:
    """The scales Q asked for ("224,256"), or the model's defaults (`ModelMeta.default_test_scales`)."""
    crop = meta.crop_size
    if scales is None:
        return meta.default_test_scales()
    values = parse_scales(scales)
    small = [q for q in values if q < crop]
    if small:
        raise usage(f"scale {small[0]} is smaller than this model's {crop}px crop; use scales >= {crop}")
    return values


def picture_posteriors(artefact: Artefact, img: Image.Image, scales: list[int], flip: bool = True) -> torch.Tensor:
    """Softmax posteriors (classes,) of an RGB picture, averaged over `scales` (and flips when `flip`).

    A fixed-size artefact sees the central crop_size x crop_size crop of the picture rescaled to each Q.
    """
    crop = artefact.meta.crop_size
    total = torch.zeros(artefact.meta.num_classes)
    for q in scales:
        x = to_uint8_tensor(rescale_shorter(img, q)).unsqueeze(0)
        if artefact.fixed_size:
            x = TF.center_crop(x, [crop, crop])
        total += dense_posteriors(artefact, x, flip=flip)[0].float()
    return total / len(scales)


def top_k(probs: torch.Tensor, classes: list[str], k: int) -> list[dict]:
    """[{"class", "index", "probability"}] for the k most probable classes, best first."""
    values, indices = probs.topk(min(k, probs.numel()))
    return [
        {"class": classes[i], "index": i, "probability": round(p, 6)}
        for p, i in zip(values.tolist(), indices.tolist())
    ]
