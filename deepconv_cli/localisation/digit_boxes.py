"""`deepconv data digit-boxes OUT`: a CPU-sized localisation set made from the built-in digits.

Each of the 1,797 UCI digits is scaled to a random size, tinted and pasted at a random place on a larger canvas
with a textured background (smooth colour noise plus grain); its tight ink box is written as PASCAL VOC XML.
Layout, as for ILSVRC: OUT/train/<digit>/<n>.png, OUT/val/<digit>/<n>.png (the digits' fixed split, every fifth
image is validation) and OUT/boxes/<digit>/<n>.xml. The same seed writes the same files.
"""

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from deepconv_cli.data.digits import VAL_EVERY, load_digits
from deepconv_cli.errors import usage
from deepconv_cli.files import staged_folder

INK_THRESHOLD = 0.25  # a pixel belongs to the digit's box when its ink (0..1) exceeds this


def background(rng: np.random.Generator, canvas: int) -> np.ndarray:
    """A textured (canvas, canvas, 3) float background: bilinear-upsampled 4x4 dark colour noise plus grain."""
    coarse = rng.uniform(0, 130, size=(4, 4, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((canvas, canvas), Image.Resampling.BILINEAR), np.float32)
    return smooth + rng.normal(0, 8, size=(canvas, canvas, 3))


def compose(digit: np.ndarray, rng: np.random.Generator, canvas: int, min_size: int,
            max_size: int) -> tuple[np.ndarray, list[int]]:
    """The digit pasted on a textured canvas: (uint8 HxWx3 image, [x0, y0, x1, y1] tight box of its ink)."""
    size = int(rng.integers(min_size, max_size + 1))
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255
    x, y = (int(v) for v in rng.integers(0, canvas - size + 1, size=2))
    alpha = np.zeros((canvas, canvas, 1), np.float32)
    alpha[y : y + size, x : x + size, 0] = ink
    colour = 255 - rng.uniform(0, 50, size=3)  # light, slightly tinted ink: in contrast with the dark texture
    image = background(rng, canvas) * (1 - alpha) + colour * alpha
    rows, cols = np.nonzero(alpha[..., 0] > INK_THRESHOLD)
    box = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
    return np.clip(image, 0, 255).round().astype(np.uint8), box


def voc_xml(filename: str, size: int, name: str, box: list[int]) -> bytes:
    """A PASCAL VOC annotation with one object."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    dims = ET.SubElement(root, "size")
    for tag, value in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(dims, tag).text = str(value)
    obj = ET.SubElement(root, "object")
    ET.SubElement(obj, "name").text = name
    bnd = ET.SubElement(obj, "bndbox")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
        ET.SubElement(bnd, tag).text = str(value)
    return ET.tostring(root)


def write_digit_boxes(out: str | Path, canvas: int = 48, min_size: int = 20, max_size: int = 32, seed: int = 0,
                      limit: int | None = None) -> dict[str, int]:
    """Write the set into OUT (train/, val/, boxes/); returns the image count per split."""
    out = Path(out)
    images, labels = load_digits()
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "val": 0}
    for i, (digit, label) in enumerate(zip(images[:limit], labels[:limit])):
        split = "val" if i % VAL_EVERY == VAL_EVERY - 1 else "train"
        image, box = compose(digit, rng, canvas, min_size, max_size)
        for folder in (out / split / str(label), out / "boxes" / str(label)):
            folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out / split / str(label) / f"{i:04d}.png")
        (out / "boxes" / str(label) / f"{i:04d}.xml").write_bytes(voc_xml(f"{i:04d}.png", canvas, str(label), box))
        counts[split] += 1
    return counts


def digit_boxes(out: str, canvas: int = 48, min_size: int = 20, max_size: int = 32, seed: int = 0,
                limit: int | None = None, exist_ok: bool = False) -> None:
    """Write the built-in digits as a localisation set: textured canvases, one digit each, VOC XML boxes.

    Args:
        out: folder to create (train/, val/, boxes/); it must not exist yet or be empty.
        canvas: side of the square canvas in pixels.
        min_size: smallest side of a pasted digit in pixels.
        max_size: largest side of a pasted digit in pixels.
        seed: random seed of sizes, places, colours and textures (the same seed writes the same files).
        limit: use only the first N digits (default: all 1,797).
        exist_ok: succeed without writing when OUT already holds a digit-boxes set.
    """
    if not 1 <= min_size <= max_size <= canvas:
        raise usage(f"need 1 <= min_size <= max_size <= canvas, got {min_size}, {max_size}, {canvas}")
    target = Path(out)
    if exist_ok and (target / "boxes").is_dir() and (target / "val").is_dir() and (target / "train").is_dir():
        print(f"{target} already holds a digit-boxes set; nothing written")
        return
    with staged_folder(target) as staging:
        counts = write_digit_boxes(staging, canvas, min_size, max_size, seed, limit)
    print(f"wrote {counts['train']} training and {counts['val']} validation {canvas}x{canvas} images with boxes "
          f"to {target}")
