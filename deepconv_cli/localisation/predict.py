"""Boxes for any picture (the classifier's top-k classes, each with its densely predicted, merged box) and the
picture with those boxes drawn, for `deepconv localise predict` (and `deepconv predict --localiser`)."""

from pathlib import Path

from PIL import Image, ImageDraw

from deepconv_cli.files import staged_file
from deepconv_cli.localisation.dense import Localiser, classify, locate

COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4")


def predict_boxes(localisers: list[Localiser], classifier, classifier_scales: list[int], img: Image.Image,
                  topk: int = 1, merge_iou: float = 0.5) -> list[dict]:
    """[{"class", "index", "probability", "box": [x0, y0, x1, y1]}] for the top-k classes, best first."""
    probs = classify(classifier, img, classifier_scales)
    values, indices = probs.topk(min(topk, len(probs)))
    boxes = locate(localisers, classifier, img, indices.tolist(), merge_iou)
    classes = localisers[0].meta.classes
    return [
        {"class": classes[i], "index": i, "probability": round(p, 6), "box": [round(v, 1) for v in box.tolist()]}
        for p, i, box in zip(values.tolist(), indices.tolist(), boxes)
    ]


def draw_boxes(img: Image.Image, predictions: list[dict], min_side: int = 256) -> Image.Image:
    """A copy of the picture (upscaled so its shorter side is at least `min_side`) with each box and its label."""
    zoom = max(1.0, min_side / min(img.size))
    out = img.convert("RGB").resize((round(img.width * zoom), round(img.height * zoom)), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(out)
    for rank, p in enumerate(predictions):
        colour = COLOURS[rank % len(COLOURS)]
        x0, y0, x1, y1 = (v * zoom for v in p["box"])
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=max(2, round(zoom)))
        draw.text((x0 + 3, y0 + 2), f"{p['class']} {p['probability']:.2f}", fill=colour)
    return out


def save_png(img: Image.Image, path: str | Path) -> None:
    with staged_file(path) as tmp:
        img.save(tmp, format="PNG")
