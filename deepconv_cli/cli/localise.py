"""`deepconv localise fit|evaluate|predict`: object localisation of the VGG paper's Appendix A.

  deepconv localise fit -c recipe.yaml --init_from CLS_CKPT        train an SCR/PCR box regressor (LightningCLI)
  deepconv localise evaluate --ckpt LOC [--ckpt LOC2] --classifier CLS --data DIR --protocol centre-gt|dense-top5
  deepconv localise predict --ckpt LOC --classifier CLS images/ --out boxes/   boxes printed and drawn as PNGs
"""

import json
import sys
from pathlib import Path
from typing import Literal

from deepconv_cli.cli.options import parse_function
from deepconv_cli.errors import failure, usage

ALIASES = {"--json": "--json_file"}
Protocol = Literal["centre-gt", "dense-top5"]


def _scales(values: list[str] | None) -> list[list[int]] | None:
    from deepconv_cli.evaluation.scales import parse_scales

    return [parse_scales(v) for v in values] if values else None


def evaluate(
    ckpt: list[str],
    data: str,
    classifier: list[str] | None = None,
    boxes: str | None = None,
    protocol: Protocol = "dense-top5",
    scales: list[str] | None = None,
    classifier_scales: str | None = None,
    classifier_method: Literal["dense", "multi-crop", "dense+multi-crop", "10-crop", "center"] = "dense",
    topk: int = 5,
    merge_iou: float = 0.5,
    offsets: int = 1,
    flip: bool = False,
    limit: int = 0,
    skip_bad_images: bool = False,
    device: str = "auto",
    json_file: str | None = None,
) -> list[dict]:
    """Localisation error (IoU > 0.5) as in the VGG paper's Tables 8 (centre-gt) and 9 (dense-top5), with a
    whole-image baseline.

    Args:
        ckpt: a localiser checkpoint; repeat to fuse several (union of boxes before merging).
        data: the val/ folder, a dataset root containing val/, or a pack made with its boxes (`deepconv data pack`).
        classifier: classification checkpoint ranking the classes (dense-top5); repeat to fuse several, as the
            paper's "best classification system" (Table 9: the nets of Table 6, dense + multi-crop).
        boxes: boxes folder (<class>/<image>.xml) or CSV (default: DATA/boxes).
        protocol: centre-gt (the ground-truth class, one central crop) or dense-top5 (the classifier's top
            classes, the localisers applied densely).
        scales: localiser test scales Q,Q,...; once for all, or once per --ckpt in order (default: its S).
        classifier_scales: the classifier's scales (default: its S-32,S,S+32 or Smin,mid,Smax).
        classifier_method: how the classifiers are evaluated (as `deepconv evaluate --method`); their posteriors
            are averaged over methods, scales and classifiers.
        topk: classes (each with one box) per image.
        merge_iou: greedy merging joins groups of boxes above this IoU.
        offsets: dense passes shifted by stride/N, N per axis (OverFeat's offsets; the VGG paper used 1).
        flip: dense passes on the mirror image too (boxes mirrored back).
        limit: N annotated images evenly spaced over the set (0 = all).
        skip_bad_images: leave out (and count) bad annotations and images.
        device: cpu, cuda, ... (auto: cuda when available).
        json_file: (--json) also write the rows as JSON (errors in percent).
    """
    if json_file and Path(json_file).is_dir():
        raise usage(f"output path is a folder: {json_file}")
    from rich.table import Table

    from deepconv_cli.evaluation.scales import parse_scales
    from deepconv_cli.files import write_text_atomically
    from deepconv_cli.localisation.evaluate import run
    from deepconv_cli.tables import show

    rows, left_out = run(ckpt, data, protocol, classifier, boxes, _scales(scales),
                         parse_scales(classifier_scales) if classifier_scales else None, topk, merge_iou,
                         skip_bad_images, limit, device, offsets, flip, classifier_method)
    table = Table(title=f"{data}: localisation error ({protocol}, IoU > 0.5)")
    hidden = ("protocol", "members", "crop", "classifiers", "classifier_q", "classifier_s", "arch", "classes")
    keys = [k for k in rows[0] if k not in hidden]
    for key in keys:
        table.add_column(key.replace("_", " "), justify="right" if isinstance(rows[0][key], float | int) else "left")
    for r in rows:
        table.add_row(*[f"{r[k]:.2f}%" if isinstance(r[k], float) else str(r[k]) for k in keys])
    show(table)
    print(f"{rows[0]['images']} images, each counted exactly once" + (f"; left out: {left_out}" if left_out else ""))
    if json_file:
        settings = {"protocol": protocol, "limit": limit, "offsets": offsets, "flip": flip}  # what `report` checks
        write_text_atomically(json_file, json.dumps({**settings, "results": rows}, indent=1) + "\n")
    return rows


def predict(
    paths: list[str],
    ckpt: list[str],
    classifier: str,
    scales: list[str] | None = None,
    classifier_scales: str | None = None,
    topk: int = 1,
    offsets: int = 1,
    flip: bool = False,
    out: str | None = None,
    json_file: str | None = None,
) -> dict:
    """The top-k classes of each image, each with its box from the localisers applied densely; boxes printed
    and drawn on PNGs.

    Args:
        paths: image files and folders.
        ckpt: a localiser checkpoint (repeatable).
        classifier: classification checkpoint.
        scales: localiser test scales Q,Q,...; once for all, or once per --ckpt in order.
        classifier_scales: the classifier's test scales.
        topk: classes (boxes) per image.
        offsets: dense passes shifted by stride/N, N per axis.
        flip: dense passes on the mirror image too.
        out: write <image>.boxes.png with the boxes drawn into this folder.
        json_file: (--json) also write the boxes as JSON keyed by file name.
    """
    if topk < 1:
        raise usage(f"--topk must be at least 1, got {topk}")
    import torch
    from rich.table import Table

    from deepconv_cli.data.folder import collect_images
    from deepconv_cli.data.images import readable_images
    from deepconv_cli.evaluation.scales import parse_scales
    from deepconv_cli.files import write_text_atomically
    from deepconv_cli.localisation.dense import load_localisers
    from deepconv_cli.localisation.predict import draw_boxes, predict_boxes, save_png
    from deepconv_cli.models.checkpoint import load_model
    from deepconv_cli.tables import show

    files = collect_images(paths)
    locs = load_localisers(ckpt, _scales(scales), torch.device("cpu"), offsets, flip)
    network, meta = load_model(classifier)
    if meta.classes != locs[0].meta.classes:
        raise usage(f"{classifier} classifies other classes than the localisers")
    qs = parse_scales(classifier_scales) if classifier_scales else meta.default_test_scales()
    results, unreadable = {}, []
    table = Table(title="boxes (x0, y0, x1, y1 in the image's pixels)")
    for col in ("image", "rank", "class", "probability", "box"):
        table.add_column(col)
    for path, img in readable_images(files, unreadable):
        preds = results[str(path)] = predict_boxes(locs, network, qs, img, topk)
        for rank, p in enumerate(preds, 1):
            table.add_row(str(path) if rank == 1 else "", str(rank), p["class"], f"{p['probability']:.4f}",
                          ", ".join(f"{v:.1f}" for v in p["box"]))
        if out:
            save_png(draw_boxes(img, preds), Path(out) / f"{path.stem}.boxes.png")
    show(table)
    if json_file:
        write_text_atomically(json_file, json.dumps(results, indent=1) + "\n")
    if unreadable:
        raise failure(f"cannot read {len(unreadable)} of {len(files)} images: {'; '.join(unreadable)}")
    return results


ACTIONS = [evaluate, predict]  # and fit: LightningCLI (cli/localise_fit.py)
POSITIONAL = {"evaluate": [], "predict": [("paths", "image files and folders")]}


def parse(argv: list[str]) -> object:
    """The options `main` runs `localise ACTION` with, parsed from `argv` (nothing run: recipes check stages so)."""
    if argv[:1] == ["fit"]:
        from deepconv_cli.cli.localise_fit import parse as parse_fit

        return parse_fit(argv[1:])
    return parse_function(ACTIONS, argv, "deepconv localise", ALIASES, POSITIONAL, ("fit",))[1]


def main(argv: list[str]) -> int:
    if argv[:1] in ([], ["-h"], ["--help"]):
        examples = __doc__.split("\n", 1)[1].rstrip()
        print("usage: deepconv localise {fit,evaluate,predict} [options]   (deepconv localise NAME --help for its "
              f"options)\n\nObject localisation of the VGG paper's Appendix A:\n{examples}")
        return 0 if argv else 2
    if argv[0] == "fit":
        from deepconv_cli.cli.localise_fit import main as fit_main

        return fit_main(argv[1:])
    function, kwargs = parse_function(ACTIONS, argv, "deepconv localise", ALIASES, POSITIONAL, ("fit",))
    function(**kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
