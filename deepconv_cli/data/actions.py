"""The action layout of the VGG paper's Table 12 (VOC-2012 actions): people, each a box in an image with the
actions they perform, as OUT/<split>/<image> (links), OUT/boxes.csv (`person,x0,y0,x1,y1`) and OUT/labels.csv
(`person,action action ...`), a person named `<split>/<image>#<object>` (object: its 1-based index among the
annotation's objects, the VOC devkit's numbering), for `deepconv features --boxes` and `linear-svm --labels`.

Boxes are pixels of the picture, 0 <= x0 < x1 <= width (half-open, as data/annotations.py). `tree_persons` gives an
image tree with boxes (SRC/<split>/<class>/<image>, SRC/boxes/<class>/<stem>.xml) this layout, each box a person
and its object's name its action: the laptop-scale Table 12 on digit-boxes (the digit's box, the digit's class).
"""

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from deepconv_cli.data.annotations import BadAnnotation, read_voc
from deepconv_cli.data.folder import IMAGE_EXTENSIONS, find_classes
from deepconv_cli.errors import failure, usage
from deepconv_cli.files import existing_file, reason, write_text_atomically

PERSON_MARK = "#"  # `train/2011_000002.jpg#1`: the image's first annotated object
BOXES_CSV, LABELS_CSV = "boxes.csv", "labels.csv"


@dataclass
class Person:
    """One person (a box) of one image: `image` relative to the layout's folder, `source` the file it links to."""

    image: str
    source: Path
    index: int
    box: list[float]
    actions: list[str]

    @property
    def name(self) -> str:
        return f"{self.image}{PERSON_MARK}{self.index}"


def _merge_csv(path: Path, header: list[str], rows: dict[str, list[str]]) -> None:
    """Rewrite the CSV keyed by its first column with `rows` added (a row of the same key replaced), sorted."""
    table: dict[str, list[str]] = {}
    if path.is_file():
        table = {r[0]: r[1:] for r in csv.reader(io.StringIO(path.read_text())) if r and r[0] != header[0]}
    table.update(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([key, *values] for key, values in sorted(table.items()))
    write_text_atomically(path, buffer.getvalue())


def write_action_layout(out: str | Path, split: str, persons: list[Person]) -> tuple[int, int]:
    """OUT/<split>/ links, OUT/boxes.csv and OUT/labels.csv updated with the split's people; (images, people)."""
    target = Path(out)
    missing = sorted({str(p.source) for p in persons if not p.source.is_file()})
    if missing:  # checked before anything is written
        raise usage(f"{len(missing)} annotated images are missing, e.g. {missing[0]}")
    (target / split).mkdir(parents=True, exist_ok=True)
    for p in persons:
        link = target / p.image
        if not link.exists():
            os.symlink(p.source.resolve(), link)
    _merge_csv(target / BOXES_CSV, ["person", "x0", "y0", "x1", "y1"],
               {p.name: [f"{v:g}" for v in p.box] for p in persons})
    _merge_csv(target / LABELS_CSV, ["image", "labels"], {p.name: [" ".join(p.actions)] for p in persons})
    return len({p.image for p in persons}), len(persons)


def tree_persons(src: str | Path, split: str) -> list[Person]:
    """Every box of SRC/boxes/<class>/<stem>.xml for the images of SRC/<split>/<class>/, its object's name its
    action; an image without its XML file, or an XML without a box, is a one-line error."""
    base = Path(src)
    classes, _ = find_classes(base / split) if (base / split).is_dir() else ([], {})
    if not classes:
        raise usage(f"{base / split} is not a folder of class folders (expected SRC/{split}/<class>/<image>)")
    if not (base / "boxes").is_dir():
        raise usage(f"{base} has no boxes/ folder (expected SRC/boxes/<class>/<image stem>.xml)")
    persons, seen = [], {}
    for cls in classes:
        for image in sorted(p for p in (base / split / cls).iterdir() if p.name.lower().endswith(IMAGE_EXTENSIONS)):
            if image.name in seen:
                raise usage(f"two images named {image.name} ({seen[image.name]} and {image}): names must be unique")
            seen[image.name] = image
            xml = base / "boxes" / cls / f"{image.stem}.xml"
            if not xml.is_file():
                raise usage(f"{image} has no box: {xml} not found")
            try:
                objects = read_voc(xml)
            except BadAnnotation as e:
                raise failure(str(e)) from None
            if not objects:
                raise failure(f"{xml}: no <object> with a box")
            persons += [Person(f"{split}/{image.name}", image, k, box, [name or cls])
                        for k, (name, box) in enumerate(objects, 1)]
    return persons


def read_person_boxes(path: str | Path, data: str | Path) -> list[tuple[str, str, list[float]]]:
    """(person relative to DATA, its image relative to DATA, box) of the CSV's rows whose image lies under DATA,
    in the file's order."""
    path = existing_file(path, "boxes CSV")
    base = os.path.abspath(data)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise usage(f"cannot read boxes CSV {path}: {reason(e, 80)}") from None
    rows = []
    for n, row in enumerate(lines, 1):
        if not row or (n == 1 and row[0].strip().lower() == "person"):
            continue
        try:
            person, *coords = [cell.strip() for cell in row]
            image, mark, index = person.rpartition(PERSON_MARK)
            if not (mark and image and index.isdigit() and len(coords) == 4):
                raise ValueError
            box = [float(c) for c in coords]
        except ValueError:
            raise failure(f"{path}:{n}: expected `image{PERSON_MARK}object,x0,y0,x1,y1`, got {','.join(row)[:80]!r}")\
                from None
        relative = os.path.relpath(os.path.abspath(path.parent / image), base)
        if not relative.startswith(".."):
            rows.append((f"{Path(relative).as_posix()}{PERSON_MARK}{index}", Path(relative).as_posix(), box))
    if not rows:
        raise usage(f"{path} has no box of an image under {data}")
    return rows
