"""`deepconv localise fit|evaluate|predict`: object localisation of the VGG paper's Appendix A.

  deepconv localise fit -c recipe.yaml --init-from CLS_CKPT        train an SCR/PCR box regressor (LightningCLI)
  deepconv localise evaluate --ckpt LOC [--ckpt LOC2] --classifier CLS --data DIR --protocol centre-gt|dense-top5
  deepconv localise predict --ckpt LOC --classifier CLS images/ --out boxes/   boxes printed and drawn as PNGs
"""

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from deepconv_cli.cli.options import OneLineParser
from deepconv_cli.errors import failure, usage
from deepconv_cli.evaluation.scales import parse_scales
from deepconv_cli.files import write_text_atomically


def dense_pass_args(p: OneLineParser) -> None:
    p.add_argument("--offsets", type=int, default=1, metavar="N", help="dense passes shifted by stride/N, N per axis "
                   "(OverFeat's offsets; the VGG paper used 1, the default)")
    p.add_argument("--flip", action="store_true", help="dense passes on the mirror image too (boxes mirrored back)")


def evaluate_parser() -> OneLineParser:
    p = OneLineParser(prog="deepconv localise evaluate", description="Localisation error (IoU > 0.5) as in the VGG "
                      "paper's Tables 8 (centre-gt) and 9 (dense-top5), with a whole-image baseline.")
    p.add_argument("--ckpt", action="append", required=True, metavar="LOC",
                   help="a localiser checkpoint; repeat to fuse several (union of boxes before merging)")
    p.add_argument("--classifier", metavar="CLS", help="classification checkpoint ranking the classes (dense-top5)")
    p.add_argument("--data", required=True, metavar="DIR", help="the val/ folder or a dataset root containing val/")
    p.add_argument("--boxes", metavar="PATH", help="boxes folder (<class>/<image>.xml) or CSV (default: DIR/boxes)")
    p.add_argument("--protocol", choices=("centre-gt", "dense-top5"), default="dense-top5")
    p.add_argument("--scales", action="append", type=parse_scales, metavar="Q,Q",
                   help="localiser test scales; once for all, or once per --ckpt in order (default: its S)")
    p.add_argument("--classifier-scales", type=parse_scales, metavar="Q,Q",
                   help="the classifier's scales (default: its S-32,S,S+32 or Smin,mid,Smax)")
    p.add_argument("--topk", type=int, default=5, help="classes (each with one box) per image (default 5)")
    p.add_argument("--merge-iou", type=float, default=0.5, help="greedy merging joins groups above this IoU")
    dense_pass_args(p)
    p.add_argument("--limit", type=int, default=0, metavar="N", help="N annotated images evenly spaced over the set")
    p.add_argument("--skip-bad-images", action="store_true", help="leave out (and count) bad annotations/images")
    p.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON (errors in percent)")
    return p


def evaluate_main(argv: list[str]) -> int:
    from deepconv_cli.localisation.evaluate import run

    args = evaluate_parser().parse_args(argv)
    if args.json and Path(args.json).is_dir():
        raise usage(f"output path is a folder: {args.json}")
    rows, left_out = run(args.ckpt, args.data, args.protocol, args.classifier, args.boxes, args.scales,
                         args.classifier_scales, args.topk, args.merge_iou, args.skip_bad_images, args.limit,
                         args.device, args.offsets, args.flip)
    table = Table(title=f"{args.data}: localisation error ({args.protocol}, IoU > 0.5)")
    keys = [k for k in rows[0] if k != "protocol"]
    for key in keys:
        table.add_column(key.replace("_", " "), justify="right" if isinstance(rows[0][key], float | int) else "left")
    for r in rows:
        table.add_row(*[f"{r[k]:.2f}%" if isinstance(r[k], float) else str(r[k]) for k in keys])
    Console(width=200).print(table)
    print(f"{rows[0]['images']} images, each counted exactly once" + (f"; left out: {left_out}" if left_out else ""))
    if args.json:
        write_text_atomically(args.json, json.dumps({"protocol": args.protocol, "results": rows}, indent=1) + "\n")
    return 0


def predict_parser() -> OneLineParser:
    p = OneLineParser(prog="deepconv localise predict", description="The top-k classes of each image, each with "
                      "its box from the localisers applied densely; boxes printed and drawn on PNGs.")
    p.add_argument("paths", nargs="+", help="image files and folders")
    p.add_argument("--ckpt", action="append", required=True, metavar="LOC", help="localiser checkpoint (repeatable)")
    p.add_argument("--classifier", required=True, metavar="CLS", help="classification checkpoint")
    p.add_argument("--scales", action="append", type=parse_scales, metavar="Q,Q", help="localiser test scales")
    p.add_argument("--classifier-scales", type=parse_scales, metavar="Q,Q", help="the classifier's test scales")
    p.add_argument("--topk", type=int, default=1, help="classes (boxes) per image (default 1)")
    dense_pass_args(p)
    p.add_argument("--out", metavar="DIR", help="write <image>.boxes.png with the boxes drawn into DIR")
    p.add_argument("--json", metavar="FILE", help="also write the boxes as JSON keyed by file name")
    return p


def predict_main(argv: list[str]) -> int:
    import torch

    from deepconv_cli.data.folder import collect_images
    from deepconv_cli.data.images import readable_images
    from deepconv_cli.localisation.dense import load_localisers
    from deepconv_cli.localisation.predict import draw_boxes, predict_boxes, save_png
    from deepconv_cli.models.checkpoint import load_model

    args = predict_parser().parse_args(argv)
    if args.topk < 1:
        raise usage(f"--topk must be at least 1, got {args.topk}")
    files = collect_images(args.paths)
    locs = load_localisers(args.ckpt, args.scales, torch.device("cpu"), args.offsets, args.flip)
    classifier, meta = load_model(args.classifier)
    if meta.classes != locs[0].meta.classes:
        raise usage(f"{args.classifier} classifies other classes than the localisers")
    qs = args.classifier_scales or meta.default_test_scales()
    results, unreadable = {}, []
    table = Table(title="boxes (x0, y0, x1, y1 in the image's pixels)")
    for col in ("image", "rank", "class", "probability", "box"):
        table.add_column(col)
    for path, img in readable_images(files, unreadable):
        preds = results[str(path)] = predict_boxes(locs, classifier, qs, img, args.topk)
        for rank, p in enumerate(preds, 1):
            table.add_row(str(path) if rank == 1 else "", str(rank), p["class"], f"{p['probability']:.4f}",
                          ", ".join(f"{v:.1f}" for v in p["box"]))
        if args.out:
            save_png(draw_boxes(img, preds), Path(args.out) / f"{path.stem}.boxes.png")
    Console(width=200).print(table)
    if args.json:
        write_text_atomically(args.json, json.dumps(results, indent=1) + "\n")
    if unreadable:
        raise failure(f"cannot read {len(unreadable)} of {len(files)} images: {'; '.join(unreadable)}")
    return 0


def parse(argv: list[str]) -> object:
    """The options `main` runs `localise ACTION` with, parsed from `argv` (nothing run: recipes check stages so)."""
    if argv[:1] == ["fit"]:
        from deepconv_cli.localisation.fit import parse as parse_fit

        return parse_fit(argv[1:])
    parsers = {"evaluate": evaluate_parser, "predict": predict_parser}
    if argv[:1] and argv[0] in parsers:
        return parsers[argv[0]]().parse_args(argv[1:])
    raise usage(f"unknown action {argv[0] if argv else ''!r}; choose one of fit, evaluate, predict")


def main(argv: list[str]) -> int:
    actions = {"fit": None, "evaluate": evaluate_main, "predict": predict_main}
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    if argv[0] not in actions:
        raise usage(f"unknown action {argv[0]!r}; choose one of fit, evaluate, predict")
    if argv[0] == "fit":
        from deepconv_cli.localisation.fit import main as fit_main

        return fit_main(argv[1:])
    return actions[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
