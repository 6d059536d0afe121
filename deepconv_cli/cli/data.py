"""`deepconv data digits OUT`: write the built-in digits as OUT/train and OUT/val ImageFolder trees."""

from pathlib import Path
from typing import Literal

from deepconv_cli.cli.options import parse_function, run_function
from deepconv_cli.data.digits import is_complete, write_digits
from deepconv_cli.files import staged_folder


def data(name: Literal["digits"], out: str, exist_ok: bool = False) -> None:
    """Write a built-in dataset as an ImageFolder tree (train/ and val/, one folder per class, PNG images).

    Args:
        name: the dataset: "digits" (1,797 UCI handwritten digits, 8x8, CC BY 4.0).
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


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs with, parsed from `argv` (nothing run: recipes check stages so)."""
    if argv[:1] == ["digit-boxes"]:
        from deepconv_cli.localisation.digit_boxes import digit_boxes

        return parse_function(digit_boxes, argv[1:], "deepconv data digit-boxes")[1]
    if argv[:1] == ["pack"]:
        return parse_function(pack, argv[1:], "deepconv data pack")[1]
    return parse_function(data, argv, "deepconv data")[1]


def main(argv: list[str]) -> int:
    if argv[:1] == ["digit-boxes"]:  # the localisation set (Appendix A): deepconv_cli/localisation/digit_boxes.py
        from deepconv_cli.localisation.digit_boxes import main as digit_boxes

        return digit_boxes(argv[1:])
    if argv[:1] == ["pack"]:
        run_function(pack, argv[1:], "deepconv data pack")
        return 0
    run_function(data, argv, "deepconv data")
    return 0
