"""Nearest images by descriptor (the AlexNet paper's Figure 4 experiment): a query image's descriptor made exactly
as the file's were, the k closest descriptors, and a contact sheet of the query and its neighbours."""

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from deepconv_cli.data.images import READ_ERRORS, open_rgb, why_unreadable
from deepconv_cli.errors import failure, usage
from deepconv_cli.evaluation.dense import rescale_shorter, to_uint8_tensor
from deepconv_cli.features.descriptors import fused_descriptors, raw_pixel_descriptors
from deepconv_cli.features.store import Features
from deepconv_cli.files import staged_file
from deepconv_cli.models.checkpoint import load_model
from deepconv_cli.training.resources import pick_device


def read_query(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise usage(f"query image not found: {path}")
    try:
        return open_rgb(path)
    except READ_ERRORS as e:
        raise failure(f"cannot read query image {path}: {why_unreadable(path, e)}") from None


def query_descriptor(feats: Features, img: Image.Image, device: str = "auto") -> torch.Tensor:
    """(D,) descriptor of `img` with the networks, scales, aggregation and flip recorded in the file's settings."""
    s = feats.settings
    if s.get("raw_pixels"):
        size = (s["raw_pixels"], s["raw_pixels"])
        return raw_pixel_descriptors([to_uint8_tensor(img.resize(size, Image.Resampling.BILINEAR))])[0]
    dev = pick_device(device)
    models = []
    for net in s["networks"]:
        if not Path(net["ckpt"]).is_file():
            raise usage(f"the features were made with {net['ckpt']}, which is no longer there")
        model, _ = load_model(net["ckpt"])
        models.append((model.to(dev), net["scales"]))
    scales = sorted({q for _, qs in models for q in qs})
    views = [{q: to_uint8_tensor(rescale_shorter(img, q)) for q in scales}]
    return fused_descriptors(models, views, s["aggregate"], s.get("flip", True))[0]


def nearest(feats: Features, query: torch.Tensor, k: int, exclude: str | None = None) -> list[tuple[int, float]]:
    """The k images (index, Euclidean distance of the unit descriptors) closest to `query`, nearest first;
    `exclude` (a relative path) leaves the query itself out when it is one of the file's images."""
    distances = torch.cdist(query[None].float(), feats.descriptors.float())[0]
    if exclude is not None and exclude in feats.paths:
        distances[feats.paths.index(exclude)] = float("inf")
    order = torch.argsort(distances)[: min(k, len(feats.paths) - (exclude in feats.paths))]
    return [(int(i), float(distances[i])) for i in order]


def relative_to_data(feats: Features, query: Path) -> str | None:
    """The query's path relative to the folder the features were made from, when it lies inside it."""
    try:
        return query.resolve().relative_to(Path(feats.settings["data"])).as_posix()
    except ValueError:
        return None


def tile(img: Image.Image, size: int, caption: str) -> Image.Image:
    """The image fitted into size x size (aspect kept, nearest-neighbour for small images), caption beneath."""
    scale = size / max(img.size)
    resample = Image.Resampling.NEAREST if scale > 2 else Image.Resampling.BILINEAR
    fitted = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), resample)
    out = Image.new("RGB", (size, size + 16), "white")
    out.paste(fitted, ((size - fitted.width) // 2, (size - fitted.height) // 2))
    ImageDraw.Draw(out).text((2, size + 2), caption[: size // 6], fill="black")
    return out


def contact_sheet(path: str | Path, query: Image.Image, feats: Features, hits: list[tuple[int, float]],
                  size: int = 128) -> None:
    """A PNG row: the query, then its neighbours nearest first, each captioned (class, distance); written whole."""
    root = Path(feats.settings["data"])
    tiles = [tile(query, size, "query")]
    for i, distance in hits:
        label = int(feats.labels[i])
        name = feats.classes[label] if label >= 0 else Path(feats.paths[i]).name
        try:
            img = open_rgb(root / feats.paths[i])
        except READ_ERRORS:
            img = Image.new("RGB", (size, size), "grey")
        tiles.append(tile(img, size, f"{name} {distance:.2f}"))
    sheet = Image.new("RGB", (len(tiles) * (size + 4), size + 16), "white")
    for n, t in enumerate(tiles):
        sheet.paste(t, (n * (size + 4), 0))
    with staged_file(path) as tmp:
        sheet.save(tmp, format="PNG")
