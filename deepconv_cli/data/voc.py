"""PASCAL VOC (the devkit's layout) and Caltech-101/256 folders as what `deepconv features` and `linear-svm` read.

VOC: VOCdevkit/VOC2007/{JPEGImages, Annotations, ImageSets/Main/<class>_<split>.txt}; each class file lists
`<image id> 1|-1|0` (0: only difficult objects of the class). Written out as OUT/<split>/<id>.jpg (symbolic links
into JPEGImages) plus OUT/labels.csv (`image,labels`, a difficult label written `cat:difficult`).
VOC-2012 actions (Table 12): ImageSets/Action/<split>.txt lists the images; each person of an image's Annotations XML
with an <actions> element is one example, its <bndbox> (1-based inclusive pixels, the devkit's) and its action flags
written in the action layout of data/actions.py.
Caltech: one folder per class (101_ObjectCategories/, 256_ObjectCategories/); the papers' splits are seeded
random draws of K training and at most T test images per class, written as OUT/split<i>/{train,val}/<class>/.
"""

import csv
import io
import os
from pathlib import Path

import numpy as np

from deepconv_cli.data.actions import Person
from deepconv_cli.data.annotations import BadAnnotation, voc_box, voc_objects
from deepconv_cli.errors import failure, usage
from deepconv_cli.files import write_text_atomically

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
VOC_ACTIONS = ("jumping", "phoning", "playinginstrument", "reading", "ridingbike", "ridinghorse", "running",
               "takingphoto", "usingcomputer", "walking", "other")  # VOC-2012's 11 action classes
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def voc_root(root: Path, image_sets: str = "Main") -> Path:
    """The VOC<year> folder: ROOT itself, or the only VOC* folder inside ROOT (or ROOT/VOCdevkit), that has
    ImageSets/<image_sets>."""
    if (root / "ImageSets" / image_sets).is_dir():
        return root
    for base in (root, root / "VOCdevkit"):
        found = sorted(p for p in base.glob("VOC*") if (p / "ImageSets" / image_sets).is_dir()) if base.is_dir() else []
        if len(found) == 1:
            return found[0]
    what = "<class>_<split>.txt" if image_sets == "Main" else "<split>.txt"
    raise usage(f"{root} is not a VOC folder (expected JPEGImages/ and ImageSets/{image_sets}/{what})")


def read_voc_labels(root: str | Path, split: str) -> dict[str, dict[str, int]]:
    """{image id: {class: 1 (present) or 0 (difficult only)}} from ImageSets/Main/<class>_<split>.txt."""
    base = voc_root(Path(root))
    labels: dict[str, dict[str, int]] = {}
    for cls in VOC_CLASSES:
        path = base / "ImageSets" / "Main" / f"{cls}_{split}.txt"
        if not path.is_file():
            raise usage(f"{path} not found: is {split!r} a split of this VOC year?")
        for n, line in enumerate(path.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
                raise usage(f"{path}:{n}: expected `<image id> 1|-1|0`, got {line!r}")
            entry = labels.setdefault(parts[0], {})
            if parts[1] != "-1":
                entry[cls] = int(parts[1])
    return labels


def write_voc(root: str | Path, out: str | Path, split: str) -> int:
    """OUT/<split>/<id>.jpg (links) and OUT/labels.csv updated with the split's rows; the number of images."""
    base, target = voc_root(Path(root)), Path(out)
    labels = read_voc_labels(base, split)
    sources = {image_id: (base / "JPEGImages" / f"{image_id}.jpg").resolve() for image_id in labels}
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:  # checked before anything is written
        raise usage(f"{len(missing)} images listed in ImageSets/Main are missing, e.g. {missing[0]}")
    folder = target / split
    folder.mkdir(parents=True, exist_ok=True)
    for image_id, source in sources.items():
        link = folder / f"{image_id}.jpg"
        if not link.exists():
            os.symlink(source, link)
    table = target / "labels.csv"
    rows: dict[str, str] = {}
    if table.is_file():
        rows = {r[0]: r[1] for r in csv.reader(io.StringIO(table.read_text())) if len(r) == 2 and r[0] != "image"}
    for image_id, classes in labels.items():
        rows[f"{split}/{image_id}.jpg"] = " ".join(c if v == 1 else f"{c}:difficult" for c, v in classes.items())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "labels"])
    writer.writerows(sorted(rows.items()))
    write_text_atomically(table, buffer.getvalue())
    return len(labels)


def action_persons(xml: Path, image: Path, split: str) -> list[Person]:
    """The people of one annotation that carry <actions>: box converted to 0-based half-open pixels."""
    try:
        objects = voc_objects(xml)
    except BadAnnotation as e:
        raise failure(str(e)) from None
    persons = []
    for k, obj in enumerate(objects, 1):
        flags, box = obj.find("actions"), voc_box(obj)
        if flags is None:
            continue
        if box is None:
            raise failure(f"{xml}: person {k} has <actions> but no numeric <bndbox> xmin/ymin/xmax/ymax")
        actions = [a for a in VOC_ACTIONS if (flags.findtext(a) or "0").strip() == "1"]
        persons.append(Person(f"{split}/{image.name}", image, k, [box[0] - 1, box[1] - 1, box[2], box[3]], actions))
    return persons


def read_voc_actions(root: str | Path, split: str) -> list[Person]:
    """Every person with actions of the images ImageSets/Action/<split>.txt lists, in the list's order."""
    base = voc_root(Path(root), "Action")
    listing = base / "ImageSets" / "Action" / f"{split}.txt"
    if not listing.is_file():
        raise usage(f"{listing} not found: is {split!r} a split of this VOC year's action task?")
    ids = list(dict.fromkeys(line.split()[0] for line in listing.read_text().splitlines() if line.strip()))
    persons = []
    for image_id in ids:
        xml = base / "Annotations" / f"{image_id}.xml"
        if not xml.is_file():
            raise usage(f"{listing} lists {image_id} but {xml} is missing")
        persons += action_persons(xml, base / "JPEGImages" / f"{image_id}.jpg", split)
    if not persons:
        raise usage(f"no person with <actions> in the {len(ids)} annotations {listing} lists")
    return persons


def caltech_splits(root: str | Path, splits: int, train_per_class: int, test_per_class: int,
                   seed: int = 0) -> list[dict[str, tuple[list[Path], list[Path]]]]:
    """Per split, {class: (training images, test images)}: `train_per_class` drawn at random, then at most
    `test_per_class` of the rest (0: all of the rest); split i draws with seed + i."""
    base = Path(root)
    classes = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if not classes:
        raise usage(f"{base} has no class folders (expected e.g. 101_ObjectCategories/<class>/*.jpg)")
    out = []
    for i in range(splits):
        rng = np.random.default_rng(seed + i)
        split = {}
        for cls in classes:
            images = sorted(p for p in cls.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if len(images) <= train_per_class:
                raise usage(f"{cls} has {len(images)} images: not more than {train_per_class} to train on")
            order = rng.permutation(len(images))
            rest = order[train_per_class:]
            rest = rest[:test_per_class] if test_per_class > 0 else rest
            split[cls.name] = ([images[j] for j in sorted(order[:train_per_class])], [images[j] for j in sorted(rest)])
        out.append(split)
    return out


def write_caltech(root: str | Path, out: str | Path, splits: int, train_per_class: int, test_per_class: int,
                  seed: int = 0) -> list[tuple[int, int]]:
    """OUT/split<i>/train/<class>/ and OUT/split<i>/val/<class>/ as links; (train, test) image counts per split."""
    counts = []
    for i, split in enumerate(caltech_splits(root, splits, train_per_class, test_per_class, seed)):
        n = [0, 0]
        for cls, parts in split.items():
            for k, (name, images) in enumerate(zip(("train", "val"), parts)):
                folder = Path(out) / f"split{i}" / name / cls
                folder.mkdir(parents=True, exist_ok=True)
                for image in images:
                    link = folder / image.name
                    if not link.exists():
                        os.symlink(image.resolve(), link)
                n[k] += len(images)
        counts.append((n[0], n[1]))
    return counts
