"""`deepconv export --ckpt X --format onnx|pt2|torchscript|safetensors`: write a verified, self-describing artefact."""

import importlib
from pathlib import Path
from typing import Literal

from deepconv_cli.cli.options import parse_options
from deepconv_cli.errors import usage
from deepconv_cli.files import existing_file, staged_file

SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".pt", "safetensors": ".safetensors"}


def _lazy(module: str, name: str):
    """A writer imported when first called, so `--help` and a mistyped path do not import torch."""

    def write(*args):
        return getattr(importlib.import_module(module), name)(*args)

    return write


WRITERS = {"onnx": _lazy("deepconv_cli.export.onnx_io", "write_onnx"),
           "pt2": _lazy("deepconv_cli.export.torch_export_io", "write_torch_export"),
           "torchscript": _lazy("deepconv_cli.export.torchscript_io", "write_torchscript"),
           "safetensors": _lazy("deepconv_cli.export.safetensors_io", "write_safetensors")}


def export(
    ckpt: str,
    format: Literal["onnx", "pt2", "torchscript", "safetensors"] = "onnx",
    out: str | None = None,
    fixed_size: bool = False,
) -> Path:
    """Export a network for inference outside deepconv, verified against PyTorch before it is put in place.

    The exported model takes an RGB 0..255 float NCHW image of any height and width >= the crop size (the
    normalisation is inside it) and returns class scores averaged over the dense score map, i.e. `evaluate`'s
    dense method at one scale before softmax. Every artefact carries the ModelMeta (architecture, classes,
    mean/scale, crop size, training scales, version) as metadata.

    Args:
        ckpt: a deepconv .ckpt (from train, fine-tune or import) or a .safetensors export.
        format: onnx (dynamic batch, height, width), pt2 (a torch.export ExportedProgram, dynamic batch, height,
            width), torchscript (traced; torch marks torch.jit deprecated in favour of torch.export: prefer pt2
            where the reader allows), or safetensors (weights + metadata).
        out: output file (default: the checkpoint's name with .onnx, .pt2, .pt or .safetensors).
        fixed_size: onnx/pt2/torchscript only: a crop_size x crop_size classifier (FC layers as
            matrix products) instead of the dense graph.
    """
    if fixed_size and format == "safetensors":
        raise usage("--fixed_size applies to onnx, pt2 and torchscript exports; safetensors holds weights only")
    existing_file(ckpt, "model file")  # before torch is imported: a mistyped path answers in a second
    from deepconv_cli.export.artefact import load_artefact, load_network
    from deepconv_cli.export.verify import TOLERANCE, verify
    from deepconv_cli.models.registry import get_spec

    model, meta = load_network(ckpt)
    target = Path(out) if out else Path(ckpt).with_suffix(SUFFIXES[format])
    if target.exists() and target.resolve() == Path(ckpt).resolve():
        raise usage(f"--out {target} would overwrite the checkpoint being exported")
    with staged_file(target) as tmp:
        WRITERS[format](model, meta, tmp, fixed_size)
        stride = get_spec(meta.arch).stride  # the probe's odd sizes straddle this network's score-map cells
        differences = verify(model, load_artefact(tmp, format), meta.crop_size, stride, fixed_size)
    checked = ", ".join(f"{shape}: {diff:.1e}" for shape, diff in differences.items())
    size = f"{meta.crop_size}x{meta.crop_size} only" if fixed_size else f"any HxW >= {meta.crop_size}"
    print(f"wrote {target} ({format}, {meta.arch}, {meta.num_classes} classes, input {size})")
    print(f"verified against PyTorch: max score difference {checked} (tolerance {TOLERANCE:g})")
    return target


def parse(argv: list[str]) -> dict:
    """The keyword arguments `main` runs export with, parsed from `argv` (nothing run: recipes check stages so)."""
    return parse_options(export, argv, "deepconv export")


def main(argv: list[str]) -> int:
    export(**parse(argv))
    return 0
