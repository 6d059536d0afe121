"""Bounding boxes for an image tree (localisation, `data pack`): one PASCAL VOC XML per image (the ILSVRC layout,
DATA/boxes/<class>/<image>.xml, several <object>s allowed) or one CSV (path,class,x0,y0,x1,y1; paths relative to
the CSV's folder).

Coordinates are pixels of the upright picture (EXIF orientation applied), 0 <= x0 < x1 <= width and
0 <= y0 < y1 <= height. A malformed file or a box outside its image stops with one line naming the file, or is
skipped and counted when `skip_bad` is set; images without any box are left out of localisation and counted.
"""

import csv
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import torch

from deepconv_cli.data.images import open_lazily, open_rgb, oriented_size
from deepconv_cli.errors import failure, usage
from deepconv_cli.files import reason


class BadAnnotation(ValueError):
    """A box file that cannot be used; its message names the file and what is wrong."""


@dataclass
class Annotated:
    """An image with its class and the boxes (n, 4) of objects of that class, in original-image pixels; its
    pixels come from the file `path` or, for a packed dataset, from item `index` of the pack's split `source`."""

    path: str
    label: int
    boxes: torch.Tensor
    size: tuple[int, int]
    source: object = None  # data.packed.PackedSplit
    index: int = -1

    def open(self):
        """The image, lazily opened (use it in a `with`)."""
        return self.source.open_lazily(self.index) if self.source is not None else open_lazily(self.path)

    def open_rgb(self):
        return self.source.open_rgb(self.index) if self.source is not None else open_rgb(self.path)


@dataclass
class BoxReport:
    no_boxes: int = 0
    bad: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.no_boxes} image(s) without boxes"] if self.no_boxes else []
        parts += [f"{len(self.bad)} with bad annotations skipped"] if self.bad else []
        return ", ".join(parts)


def voc_objects(path: str | Path) -> list[ET.Element]:
    """Every <object> element of a PASCAL VOC annotation file."""
    try:
        return list(ET.parse(path).getroot().iter("object"))
    except (ET.ParseError, OSError) as e:
        raise BadAnnotation(f"{path}: not a readable VOC XML file ({reason(e, 80)})") from None


def voc_box(obj: ET.Element) -> list[float] | None:
    """[xmin, ymin, xmax, ymax] of an <object>'s <bndbox> as written; None without a box of four numbers."""
    try:
        return [float(obj.find("bndbox").findtext(tag)) for tag in ("xmin", "ymin", "xmax", "ymax")]
    except (AttributeError, TypeError, ValueError):
        return None


def read_voc(path: str | Path) -> list[tuple[str, list[float]]]:
    """(object name, [x0, y0, x1, y1]) of every <object> of a PASCAL VOC annotation file."""
    objects = []
    for i, obj in enumerate(voc_objects(path), 1):
        coords = voc_box(obj)
        if coords is None:
            raise BadAnnotation(f"{path}: object {i} lacks a name or numeric bndbox xmin/ymin/xmax/ymax")
        objects.append(((obj.findtext("name") or "").strip(), coords))
    return objects


def read_csv(path: str | Path) -> dict[str, list[tuple[str, list[float]]]]:
    """Real image path -> [(class, [x0, y0, x1, y1])] from a CSV of path,class,x0,y0,x1,y1 rows (header optional)."""
    path = Path(path)
    table: dict[str, list[tuple[str, list[float]]]] = {}
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise usage(f"cannot read box CSV {path}: {reason(e, 80)}") from None
    for line, row in enumerate(rows, 1):
        if not row or (line == 1 and row[-1].strip().lower() in ("y1", "ymax")):
            continue
        try:
            image, name, *coords = [cell.strip() for cell in row]
            if len(coords) != 4:
                raise ValueError
            box = [float(c) for c in coords]
        except ValueError:
            raise failure(f"{path}: line {line} is not path,class,x0,y0,x1,y1: {','.join(row)[:80]}") from None
        table.setdefault(os.path.realpath(path.parent / image), []).append((name, box))
    return table


def check_box(box: list[float], size: tuple[int, int], where: str) -> None:
    w, h = size
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise BadAnnotation(f"{where}: box {[round(v, 1) for v in box]} is empty or outside the {w}x{h} image")


def attach_boxes(
    samples: list[tuple[str, int]], classes: list[str], source: str | Path, skip_bad: bool = False
) -> tuple[list[Annotated], BoxReport]:
    """The samples that have boxes, each with the boxes of its class (all its boxes when none names the class).

    `source` is a boxes folder (<class>/<image stem>.xml) or a CSV file.
    """
    source = Path(source)
    if not source.exists():
        raise usage(f"box annotations not found: {source} (a folder of <class>/<image>.xml files or a CSV)")
    table = read_csv(source) if source.is_file() else None
    out, report = [], BoxReport()
    for path, label in samples:
        where = path
        try:
            if table is not None:
                objects = table.get(os.path.realpath(path), [])
            else:
                xml = source / classes[label] / (Path(path).stem + ".xml")
                where = str(xml)
                objects = read_voc(xml) if xml.is_file() else []
            if not objects:
                report.no_boxes += 1
                continue
            try:
                with open_lazily(path) as img:
                    size = oriented_size(img)
            except OSError as e:
                raise BadAnnotation(f"{path}: not a readable image ({e})") from None
            for _, box in objects:
                check_box(box, size, where)
        except BadAnnotation as e:
            if not skip_bad:
                raise failure(
                    f"{e} (leave such images out with --skip_bad_images / --data.skip_bad_images true)"
                ) from None
            report.bad.append(str(e))
            continue
        own = [box for name, box in objects if name == classes[label]] or [box for _, box in objects]
        out.append(Annotated(path, label, torch.tensor(own, dtype=torch.float32), size))
    return out, report
