"""`deepconv predict --ckpt X img1.jpg photos/ --topk 5`: the top-k classes of image files, as a table and JSON."""

import json

from deepconv_cli.cli.options import parse_options
from deepconv_cli.errors import failure, usage
from deepconv_cli.files import existing_file, write_text_atomically

ALIASES = {"--json": "--json_file"}


def predict(
    paths: list[str],
    ckpt: str,
    topk: int = 5,
    json_file: str | None = None,
    scales: str | None = None,
    flip: bool = True,
) -> dict[str, list[dict]]:
    """Top-k classes of each image: dense evaluation over several scales, averaged with the mirrored image.

    Works from a .ckpt, a TorchScript .pt, an .onnx (run by onnxruntime) or a .safetensors file, reading the
    classes and preprocessing from the file itself. Any image file is accepted: greyscale, palette, CMYK,
    16-bit, transparent, of any size (small ones are upscaled to the test scale).

    Args:
        paths: image files and folders (searched recursively).
        ckpt: the model: .ckpt, .pt (TorchScript), .onnx or .safetensors.
        topk: classes listed per image.
        json_file: (--json) also write the predictions as JSON keyed by file name to this file.
        scales: test scales Q (shorter side in pixels), comma-separated, e.g. 224,256 (default: the model's
            S-32, S, S+32 for fixed S, Smin, mid, Smax for jittered S, none below the crop size).
        flip: average with the horizontally flipped image (--no-flip to turn off).
    """
    if topk < 1:
        raise usage(f"--topk must be at least 1, got {topk}")
    existing_file(ckpt, "model file")  # before torch is imported: a mistyped path answers in a second

    from deepconv_cli.data.folder import collect_images
    from deepconv_cli.data.images import readable_images
    from deepconv_cli.evaluation.prediction import picture_posteriors, resolve_scales, top_k
    from deepconv_cli.export.artefact import load_artefact
    from deepconv_cli.training.resources import set_threads

    files = collect_images(paths)
    set_threads(0)
    artefact = load_artefact(ckpt)
    qs = resolve_scales(artefact.meta, scales)
    results: dict[str, list[dict]] = {}
    unreadable: list[str] = []
    for path, img in readable_images(files, unreadable):
        results[str(path)] = top_k(picture_posteriors(artefact, img, qs, flip), artefact.meta.classes, topk)
    if results:
        show(results, f"{ckpt}: {'centre crop' if artefact.fixed_size else 'dense'}", qs, flip)
    if json_file:
        write_text_atomically(json_file, json.dumps(results, indent=1) + "\n")
    if unreadable:
        raise failure(f"cannot read {len(unreadable)} of {len(files)} images: {'; '.join(unreadable)}")
    return results


def show(results: dict[str, list[dict]], title: str, scales: list[int], flip: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    views = "flip-averaged" if flip else "no flip"
    table = Table(title=f"{title}, scales {', '.join(map(str, scales))}, {views}")
    for col, justify in (("image", "left"), ("rank", "right"), ("class", "left"), ("probability", "right")):
        table.add_column(col, justify=justify)
    for name, top in results.items():
        for rank, entry in enumerate(top, 1):
            table.add_row(name if rank == 1 else "", str(rank), entry["class"], f"{entry['probability']:.4f}")
        table.add_section()
    Console().print(table)


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs predict with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_options(predict, argv, "deepconv predict", ALIASES, ("paths", "image files and folders"))


def main(argv: list[str]) -> int:
    predict(**parse(argv))
    return 0
