"""`deepconv data digits|digit-boxes OUT`: a built-in dataset as an ImageFolder tree; `deepconv data pack`: litdata."""

from pathlib import Path

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


def pack(src: str, out: str, max_side: int = 0, workers: int = 0) -> None:
    """Pack an ImageFolder tree (SRC/train and SRC/val) into litdata chunks that train, evaluate and stats read
    with --data.data_dir OUT (or --data OUT). Resumable: run the same command again after an interruption.

    Args:
        src: folder holding train/ and val/, one sub-folder of images per class.
        out: the packed dataset to create: a local folder (absent or empty) or an s3:// / gs:// URL.
        max_side: re-encode (JPEG, quality 90) images whose shorter side exceeds this many pixels down to it;
            0 stores every file's original bytes.
        workers: packing processes (0: one per CPU core).
    """
    if max_side < 0 or workers < 0:
        from deepconv_cli.errors import usage

        raise usage("--max_side and --workers must be 0 or more")
    from deepconv_cli.data.packed import pack as pack_tree

    meta = pack_tree(src, out, max_side, workers)
    counts = {split: len(meta["splits"][split]["labels"]) for split in meta["splits"]}
    print(f"packed {counts['train']} training and {counts['val']} validation images of {len(meta['classes'])} "
          f"classes into {out}" + (f" ({len(meta['bad'])} bad file(s) left out, listed above)" if meta["bad"] else ""))


# the first word chooses: digits, digit-boxes (localisation/digit_boxes.py), pack (data/packed.py)
DATASETS = [digits, digit_boxes, pack]


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_function(DATASETS, argv, "deepconv data")[1]


def main(argv: list[str]) -> int:
    run_function(DATASETS, argv, "deepconv data")
    return 0
