"""`deepconv evaluate`: top-1/top-5 error of checkpoints on a val/ tree, dense or multi-crop, multi-scale, fused.

A small argparse layer rather than jsonargparse: the command line the paper's users type repeats `--ckpt` for an
ensemble and says `--no-flip` and `--scales 256,384,512`, which jsonargparse's function CLIs cannot spell.
"""

import argparse
import os
from pathlib import Path

from rich.console import Console

from deepconv_cli.cli.options import OneLineParser
from deepconv_cli.errors import failure, usage
from deepconv_cli.evaluation.fusion import METHODS
from deepconv_cli.evaluation.report import table, to_csv, to_json
from deepconv_cli.evaluation.runner import evaluate
from deepconv_cli.evaluation.scales import parse_scales
from deepconv_cli.files import write_text_atomically

EXAMPLES = """examples:
  deepconv evaluate --ckpt runs/vgg_d/best.ckpt --data /data/imagenet/val --method dense --scales 256,384,512
  deepconv evaluate --ckpt d.ckpt --ckpt e.ckpt --data val/ --method dense+multi-crop --json out.json
"""


def parser() -> OneLineParser:
    p = OneLineParser(
        prog="deepconv evaluate", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Top-1/top-5 error as in the VGG paper (sections 3.2, 4.2-4.4): dense evaluation of the whole "
        "image, multi-crop (5x5 grid x 2 flips per scale), AlexNet's 10-crop or the centre crop; softmax posteriors "
        "averaged over the test scales, over dense+multi-crop and over several --ckpt (an ensemble).",
    )
    p.add_argument("--ckpt", action="append", required=True, metavar="CKPT",
                   help="a deepconv checkpoint; repeat for an ensemble (posteriors averaged)")
    p.add_argument("--data", required=True, metavar="DIR", help="the val/ folder, or a dataset root containing val/")
    p.add_argument("--method", choices=METHODS, default="dense", help="evaluation method (default: dense)")
    p.add_argument("--scales", type=parse_scales, metavar="Q,Q,...",
                   help="test scales Q (shorter side); default per checkpoint: S-32,S,S+32 for fixed S "
                   "(32 scaled by crop/224), Smin,mid,Smax for jittered S")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="skip the horizontally flipped views")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="evaluate N images evenly spaced over the set")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="images (dense) or crops per forward pass")
    p.add_argument("--num-workers", type=int, default=min(4, os.cpu_count() or 1), metavar="N",
                   help="image decoding processes")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="forward-pass precision: auto = bf16 autocast on CUDA where supported, fp32 on CPU")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="decode every file first and leave out (and count) the ones that are not readable images")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON (top1_error, top5_error in percent)")
    p.add_argument("--csv", metavar="FILE", help="also write the rows as CSV")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    for out in (args.json, args.csv):
        if out and Path(out).is_dir():
            raise usage(f"output path is a folder: {out}")
    rows = evaluate(args.ckpt, args.data, args.method, args.scales, args.flip, args.limit, args.batch_size,
                    args.num_workers, args.device,
                    skip_bad_images=args.skip_bad_images, precision=args.precision)
    console = Console()
    if not console.is_terminal:  # a log or a pipe: print the whole table rather than fold it into 80 columns
        console = Console(width=200)
    console.print(table(rows, f"{args.data}: top-1 / top-5 error"))
    print(f"{rows[0]['images']} images, each counted exactly once")
    try:
        if args.json:
            write_text_atomically(args.json, to_json(rows))
        if args.csv:
            write_text_atomically(args.csv, to_csv(rows))
    except OSError as e:
        raise failure(f"cannot write results: {e}") from None
    return 0
