"""`deepconv evaluate`: top-1/top-5 error of checkpoints on a val/ tree, dense or multi-crop, multi-scale, fused."""

from pathlib import Path
from typing import Literal

from deepconv_cli.cli.options import parse_options
from deepconv_cli.errors import failure, usage
from deepconv_cli.files import existing_file, is_url

Method = Literal["dense", "multi-crop", "dense+multi-crop", "10-crop", "center"]  # evaluation.fusion.METHODS


def evaluate(
    ckpt: list[str],
    data: str,
    method: Method = "dense",
    scales: str | None = None,
    flip: bool = True,
    limit: int = 0,
    batch_size: int = 32,
    num_workers: int | None = None,
    device: str = "auto",
    devices: int = 1,
    skip_bad_images: bool = False,
    precision: Literal["auto", "bf16", "fp32"] = "auto",
    json: str | None = None,
    csv: str | None = None,
) -> list[dict]:
    """Top-1/top-5 error as in the VGG paper (sections 3.2, 4.2-4.4): dense evaluation of the whole image,
    multi-crop (5x5 grid x 2 flips per scale), AlexNet's 10-crop or the centre crop; softmax posteriors averaged
    over the test scales, over dense+multi-crop and over several --ckpt (an ensemble).

    Examples: deepconv evaluate --ckpt runs/vgg_d/best.ckpt --data /data/imagenet/val --scales 256,384,512;
    deepconv evaluate --ckpt d.ckpt --ckpt e.ckpt --data val/ --method dense+multi-crop --json out.json

    Args:
        ckpt: a deepconv checkpoint; repeat --ckpt for an ensemble (posteriors averaged).
        data: the val/ folder, or a dataset root containing val/.
        method: evaluation method.
        scales: test scales Q (shorter side), comma-separated, e.g. 256,384,512; default per checkpoint:
            S-32,S,S+32 for fixed S (32 scaled by crop/224), Smin,mid,Smax for jittered S.
        flip: also evaluate the horizontally flipped views (--flip false to skip them).
        limit: evaluate N images evenly spaced over the set (0 = all).
        batch_size: images (dense) or crops per forward pass.
        num_workers: image decoding processes (default: the usable CPU cores, at most 4).
        device: cpu, cuda, cuda:1, ... (auto: cuda when available).
        devices: evaluate in N processes, each on a share of the images (one GPU each, cuda:0..N-1, or N CPU
            processes with --device cpu); the table is the one a single device gives, every image counted once.
        skip_bad_images: decode every file first and leave out (and count) the ones that are not readable images.
        precision: auto = bf16 autocast on a CUDA device that supports it, fp32 otherwise; bf16 or fp32 forces one.
        json: also write the rows as JSON (top1_error, top5_error in percent) to this file.
        csv: also write the rows as CSV to this file.
    """
    from deepconv_cli.evaluation.scales import parse_scales
    from deepconv_cli.training.resources import set_threads, usable_cores

    qs = parse_scales(scales) if scales is not None else None
    if devices < 1:
        raise usage(f"--devices must be at least 1, got {devices}")
    for path in ckpt:  # answered before torch is imported: a mistyped path costs a second, not a minute
        existing_file(path, "checkpoint")
    if not is_url(data) and not Path(data).exists():  # s3:// / gs:// packs are opened by litdata
        raise usage(f"data folder not found: {data}")
    for out in (json, csv):
        if out and Path(out).is_dir():
            raise usage(f"output path is a folder: {out}")
    workers = min(4, usable_cores()) if num_workers is None else num_workers
    set_threads(workers)
    return _run(ckpt, data, method, qs, flip, limit, batch_size, workers, device, skip_bad_images, json, csv,
                precision, devices)


def _run(ckpt, data, method, scales, flip, limit, batch_size, workers, device, skip_bad_images, json_out, csv_out,
         precision, devices):
    from deepconv_cli.evaluation.report import table, to_csv, to_json
    from deepconv_cli.evaluation.runner import evaluate as run_evaluation
    from deepconv_cli.files import write_text_atomically
    from deepconv_cli.tables import show

    rows = run_evaluation(ckpt, data, method, scales, flip, limit, batch_size, workers, device,
                          skip_bad_images=skip_bad_images, precision=precision, devices=devices)
    for r in rows:
        r["limit"] = limit  # `deepconv report` sets a partial set apart from the paper's full one
    show(table(rows, f"{data}: top-1 / top-5 error"))
    spread = f" (spread over {devices} processes)" if devices > 1 else ""
    print(f"{rows[0]['images']} images, each counted exactly once{spread}")
    try:
        if json_out:
            write_text_atomically(json_out, to_json(rows))
        if csv_out:
            write_text_atomically(csv_out, to_csv(rows))
    except OSError as e:
        raise failure(f"cannot write results: {e}") from None
    return rows


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs evaluate with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_options(evaluate, argv, "deepconv evaluate")


def main(argv: list[str]) -> int:
    evaluate(**parse(argv))
    return 0
