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


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs with, parsed from `argv` (nothing run: recipes check stages so)."""
    if argv[:1] == ["digit-boxes"]:
        from deepconv_cli.localisation.digit_boxes import digit_boxes

        return parse_function(digit_boxes, argv[1:], "deepconv data digit-boxes")[1]
    return parse_function(data, argv, "deepconv data")[1]


def main(argv: list[str]) -> int:
    if argv[:1] == ["digit-boxes"]:  # the localisation set (Appendix A): deepconv_cli/localisation/digit_boxes.py
        from deepconv_cli.localisation.digit_boxes import digit_boxes

        run_function(digit_boxes, argv[1:], "deepconv data digit-boxes")
        return 0
    run_function(data, argv, "deepconv data")
    return 0
