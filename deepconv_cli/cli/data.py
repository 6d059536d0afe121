"""`deepconv data digits|digit-boxes OUT`: a built-in dataset as an ImageFolder tree; `data voc` and `data caltech`:
the VGG paper's Appendix B datasets as folders `deepconv features` reads (`data box-actions`: a tree with boxes in
VOC's action layout); `data pack`: litdata chunks."""

from pathlib import Path
from typing import Literal

from jsonargparse.typing import NonNegativeInt, PositiveInt

from deepconv_cli.cli.options import parse_function, run_function
from deepconv_cli.data.digits import is_complete, write_digits
from deepconv_cli.files import staged_folder
from deepconv_cli.localisation.digit_boxes import digit_boxes


def digits(out: str, exist_ok: bool = False) -> None:
    """Write the built-in digits (1,797 UCI handwritten digits, 8x8, CC BY 4.0) as an ImageFolder tree.

    OUT/train and OUT/val, one folder per class, PNG images.

    Args:
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


def voc(root: str, out: str, split: str = "trainval",
        task: Literal["classification", "action"] = "classification") -> None:
    """A PASCAL VOC split (VOCdevkit/VOC2007: JPEGImages/, ImageSets/Main/<class>_<split>.txt) as OUT/<split>/
    (links to the images) and OUT/labels.csv (`cat:difficult` for an image with only difficult cats), for
    `deepconv features --data OUT/<split>` then `deepconv linear-svm --labels OUT/labels.csv --ap voc2007`.
    With --task action (VOC-2012, Table 12: ImageSets/Action/<split>.txt, each person's <bndbox> and <actions>):
    OUT/<split>/, OUT/boxes.csv and OUT/labels.csv with one row per person, for `deepconv features --data
    OUT/<split> --boxes OUT/boxes.csv --region image+box`.

    Args:
        root: the VOC<year> folder, or a folder holding it (or VOCdevkit/).
        out: folder to write into; run once per split (train, val, trainval, test), the CSVs accumulate.
        split: the ImageSets/Main (or ImageSets/Action) split name.
        task: classification (20 object classes, per image) or action (11 action classes, per person).
    """
    if task == "action":
        from deepconv_cli.data.actions import write_action_layout
        from deepconv_cli.data.voc import read_voc_actions

        images, persons = write_action_layout(out, split, read_voc_actions(root, split))
        print(f"linked {images} images of {split} into {Path(out) / split}; {persons} people with their boxes and "
              f"actions in {Path(out) / 'boxes.csv'} and {Path(out) / 'labels.csv'}")
        return
    from deepconv_cli.data.voc import write_voc

    n = write_voc(root, out, split)
    print(f"linked {n} images of {split} into {Path(out) / split}; labels in {Path(out) / 'labels.csv'}")


def box_actions(src: str, out: str, split: str = "train") -> None:
    """An image tree with boxes (SRC/<split>/<class>/, SRC/boxes/<class>/<stem>.xml, as `data digit-boxes`
    writes) in the action layout of `data voc --task action`: each box a "person", its object's name (the digit)
    its action. Table 12's laptop-scale form: the whole canvas (setting i) or canvas and digit box (setting ii).

    Args:
        src: the tree, e.g. a digit-boxes folder.
        out: folder to write into (OUT/<split>/ links, OUT/boxes.csv, OUT/labels.csv); run once per split.
        split: the sub-folder of SRC to convert (train or val).
    """
    from deepconv_cli.data.actions import tree_persons, write_action_layout

    images, persons = write_action_layout(out, split, tree_persons(src, split))
    print(f"linked {images} images of {split} into {Path(out) / split}; {persons} boxes with their labels in "
          f"{Path(out) / 'boxes.csv'} and {Path(out) / 'labels.csv'}")


def caltech(root: str, out: str, splits: PositiveInt = 3, train_per_class: PositiveInt = 30,
            test_per_class: NonNegativeInt = 50, seed: int = 0) -> None:
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

    counts = write_caltech(root, out, int(splits), int(train_per_class), int(test_per_class), seed)
    for i, (n_train, n_test) in enumerate(counts):
        print(f"split {i}: {n_train} training and {n_test} test images in {Path(out) / f'split{i}'}")


def pack(src: str, out: str, max_side: int = 0, workers: int = 0, boxes: str | None = None,
         restart: bool = False) -> None:
    """Pack an ImageFolder tree (SRC/train and SRC/val) into litdata chunks that train, evaluate, stats, features
    and localise read with --data.data_dir OUT (or --data OUT). Resumable: run the same command again after an
    interruption (from the same source files and options; --restart starts over).

    Args:
        src: folder holding train/ and val/, one sub-folder of images per class.
        out: the packed dataset to create: a local folder (absent or empty) or an s3:// / gs:// URL.
        max_side: re-encode (JPEG, quality 90) images whose shorter side exceeds this many pixels down to it;
            0 stores every file's original bytes.
        workers: packing processes (0: one per CPU core).
        boxes: box annotations packed with their images, for `localise fit|evaluate` on the pack: a folder of
            <class>/<image stem>.xml (PASCAL VOC) or a CSV of path,class,x0,y0,x1,y1 (default: SRC/boxes when it
            exists). Boxes follow a --max_side re-encode.
        restart: delete an interrupted pack of OUT and start over (needed when the source files or the options
            changed since the interruption: such a pack is never continued); on s3://, everything under OUT.
    """
    if max_side < 0 or workers < 0:
        from deepconv_cli.errors import usage

        raise usage("--max_side and --workers must be 0 or more")
    from deepconv_cli.data.packing import pack as pack_tree

    meta = pack_tree(src, out, max_side, workers, boxes, restart)
    counts = {split: len(meta["splits"][split]["labels"]) for split in meta["splits"]}
    print(f"packed {counts['train']} training and {counts['val']} validation images of {len(meta['classes'])} "
          f"classes into {out}" + (f" ({len(meta['bad'])} bad file(s) left out, listed above)" if meta["bad"] else ""))
    if "boxes" in meta["splits"]["train"]:
        n = {split: len(meta["splits"][split]["boxes"]) for split in meta["splits"]}
        bad = len(meta["bad_boxes"])
        print(f"boxes of {n['train']} training and {n['val']} validation images packed with them"
              + (f" ({bad} bad annotation(s) left out, listed above)" if bad else ""))


# the first word chooses: digits, digit-boxes (localisation/digit_boxes.py), voc, box-actions, caltech, pack
DATASETS = [digits, digit_boxes, voc, box_actions, caltech, pack]


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_function(DATASETS, argv, "deepconv data")[1]


def main(argv: list[str]) -> int:
    run_function(DATASETS, argv, "deepconv data")
    return 0
