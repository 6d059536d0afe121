"""`deepconv features --ckpt CKPT --data DIR --out FILE`: Appendix B image descriptors of every image of a folder."""

from typing import Literal

from deepconv_cli.cli.options import parse_options

ALIASES = {"--no-flip": "--flip=false", "--bf16": "--precision=bf16"}


def features(
    data: str,
    out: str,
    ckpt: list[str] | None = None,
    scales: str | None = None,
    aggregate: Literal["average", "stack", "max"] = "average",
    flip: bool = True,
    raw_pixels: int = 0,
    batch_size: int = 32,
    chunk_size: int = 256,
    num_workers: int = 2,
    device: str = "auto",
    precision: Literal["fp32", "bf16"] = "fp32",
    boxes: str | None = None,
    region: Literal["image", "box", "image+box"] = "image",
) -> None:
    """Image descriptors as in the VGG paper's Appendix B, for linear SVMs (`deepconv linear-svm`) and retrieval
    (`deepconv similar`).

    Each image is rescaled to shorter side Q and the network's penultimate layer (FC2 for VGG, FC layers run as
    convolutions) is applied densely to the whole image; its map is global-average-pooled and averaged with the
    horizontally flipped image's. Scales are averaged (D values) or stacked (D x scales); the result is
    L2-normalised. Several --ckpt are fused late by stacking their (L2-normalised) descriptors. Chunks of images
    are written to OUT.parts/ as they finish: re-running the same command after an interruption resumes.
    With --boxes (VOC-2012 actions, Table 12) each row is one person: the descriptor of the whole image (--region
    image, setting i), of the box's crop (box) or both stacked (image+box, setting ii).

    Args:
        data: a folder of class sub-folders (labels from the folders) or a flat folder of images (no labels;
            give them to `linear-svm --labels`).
        out: the descriptor file to write (.safetensors: descriptors, labels; paths, classes, settings in its
            metadata).
        ckpt: a deepconv checkpoint; repeat for late fusion (--ckpt d.ckpt --ckpt e.ckpt).
        scales: scales Q, comma-separated, e.g. 256,384,512 (default: each checkpoint's test scales).
        aggregate: combine the scales by averaging or max-pooling (D values) or stacking (D x scales values).
        flip: average with the horizontally flipped image (--flip false to turn off).
        raw_pixels: instead of a network, the pixel baseline: each image squashed to SIZE x SIZE, its RGB values
            flattened, centred and L2-normalised.
        batch_size: images per forward pass.
        chunk_size: images per chunk file (the unit of resuming).
        num_workers: image decoding processes.
        device: cpu, cuda, cuda:1, ... (default: cuda when available).
        precision: fp32, or bf16 to run the networks under bfloat16 autocast (as `evaluate --precision`; fp32 by
            default so that descriptor files agree across devices).
        boxes: a CSV of people (`person,x0,y0,x1,y1`, person = `<image>#<object>`, the image relative to the CSV's
            folder), as `deepconv data voc --task action` writes: one descriptor per person whose image is in DATA.
        region: with --boxes: image (the whole image), box (the box's crop, the same dense multi-scale
            descriptor) or image+box (both, each L2-normalised, stacked and normalised again).
    """
    from deepconv_cli.evaluation.scales import parse_scales
    from deepconv_cli.features.extract import extract_features
    from deepconv_cli.features.store import net_name

    feats, computed = extract_features(data, out, ckpt, parse_scales(scales) if scales else None, aggregate, flip,
                                       raw_pixels, batch_size, chunk_size, num_workers, device,
                                       precision == "bf16", boxes=boxes, region=region)
    chunks = -(-len(feats.paths) // chunk_size)
    if computed < chunks:
        print(f"resumed: {chunks - computed} of {chunks} chunks were already written, {computed} computed now")
    what = "raw pixels" if raw_pixels else " + ".join(net_name(n["arch"]) for n in feats.settings["networks"])
    labels = f"{len(feats.classes)} classes" if feats.classes else "no labels"
    how = (what if raw_pixels else f"{what}, {aggregate}") + (f", region {region}" if boxes else "")
    rows = "boxes" if boxes else "images"
    print(f"wrote {out}: {len(feats.paths)} {rows} x {feats.dim} values ({how}, {labels})")


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_options(features, argv, "deepconv features", ALIASES)


def main(argv: list[str]) -> int:
    features(**parse(argv))
    return 0
