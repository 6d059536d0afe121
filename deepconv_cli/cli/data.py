"""`deepconv data digits OUT` / `deepconv data digit-boxes OUT`: write a built-in dataset as an ImageFolder tree."""

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


DATASETS = [digits, digit_boxes]  # the first word chooses: digits, digit-boxes (localisation/digit_boxes.py)


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_function(DATASETS, argv, "deepconv data")[1]


def main(argv: list[str]) -> int:
    run_function(DATASETS, argv, "deepconv data")
    return 0
