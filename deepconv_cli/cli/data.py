"""`deepconv data digits OUT`: write the built-in digits as OUT/train and OUT/val ImageFolder trees; `data voc` and
`data caltech`: the VGG paper's Appendix B datasets, from their own layouts, as folders `deepconv features` reads."""

from pathlib import Path
from typing import Literal

from deepconv_cli.cli.options import parse_function, run_function
from deepconv_cli.data.digits import is_complete, write_digits
from deepconv_cli.files import staged_folder


def data(name: Literal["digits"], out: str, exist_ok: bool = False) -> None:
    """Write a built-in dataset as an ImageFolder tree (train/ and val/, one folder per class, PNG images).

    Args:
        name: the dataset: "digits" (1,797 UCI handwritten digits, 8x8, CC BY 4.0). Also: `deepconv data
            digit-boxes OUT` (digits on canvases, with boxes), `deepconv data voc VOC_ROOT OUT --split S` and
            `deepconv data caltech ROOT OUT` (the VGG paper's Appendix B datasets, from their own layouts).
        out: folder to create; it must not exist yet or be empty.
        exist_ok: succeed without writing when OUT already holds the complete dataset.
    """
    target = Path(out)
    if exist_ok and is_complete(target):
        print(f"{target} already holds the digits; nothing written")
        return
    with staged_folder(target) as staging:
        counts = write_digits(staging)
    print(f"wrote {counts['train']} training and {counts['val']} validation images of 10 classes to {target}")


def voc(root: str, out: str, split: str = "trainval") -> None:
    """A PASCAL VOC split (VOCdevkit/VOC2007: JPEGImages/, ImageSets/Main/<class>_<split>.txt) as OUT/<split>/
    (links to the images) and OUT/labels.csv (`cat:difficult` for an image with only difficult cats), for
    `deepconv features --data OUT/<split>` then `deepconv linear-svm --labels OUT/labels.csv --ap voc2007`.

    Args:
        root: the VOC<year> folder, or a folder holding it (or VOCdevkit/).
        out: folder to write into; run once per split (train, val, trainval, test), the CSV accumulates.
        split: the ImageSets/Main split name.
    """
    from deepconv_cli.data.voc import write_voc

    n = write_voc(root, out, split)
    print(f"linked {n} images of {split} into {Path(out) / split}; labels in {Path(out) / 'labels.csv'}")


def caltech(root: str, out: str, splits: int = 3, train_per_class: int = 30, test_per_class: int = 50,
            seed: int = 0) -> None:
    """Seeded random splits of a Caltech folder (one folder per class) as OUT/split<i>/{train,val}/<class>/
    (links): Caltech-101 as in the VGG paper = 3 splits of 30 training and up to 50 test images per class;
    Caltech-256 = --train_per_class 60 --test_per_class 0 (the rest).

    Args:
        root: the class folders' parent (101_ObjectCategories/ or 256_ObjectCategories/).
        out: folder to write into.
        splits: number of random splits.
        train_per_class: training images per class.
        test_per_class: at most this many test images per class (0: all the rest).
        seed: split i draws with seed + i.
    """
    from deepconv_cli.data.voc import write_caltech

    for i, (n_train, n_test) in enumerate(write_caltech(root, out, splits, train_per_class, test_per_class, seed)):
        print(f"split {i}: {n_train} training and {n_test} test images in {Path(out) / f'split{i}'}")


SETS = {"voc": voc, "caltech": caltech}


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs with, parsed from `argv` (nothing run: recipes check stages so)."""
    if argv[:1] == ["digit-boxes"]:
        from deepconv_cli.localisation.digit_boxes import digit_boxes

        return parse_function(digit_boxes, argv[1:], "deepconv data digit-boxes")[1]
    if argv[:1] and argv[0] in SETS:
        return parse_function(SETS[argv[0]], argv[1:], f"deepconv data {argv[0]}")[1]
    return parse_function(data, argv, "deepconv data")[1]


def main(argv: list[str]) -> int:
    if argv[:1] == ["digit-boxes"]:  # the localisation set (Appendix A): deepconv_cli/localisation/digit_boxes.py
        from deepconv_cli.localisation.digit_boxes import main as digit_boxes

        return digit_boxes(argv[1:])
    if argv[:1] and argv[0] in SETS:
        run_function(SETS[argv[0]], argv[1:], f"deepconv data {argv[0]}")
        return 0
    run_function(data, argv, "deepconv data")
    return 0
