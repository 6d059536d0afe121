"""TorchScript export: the traced dense (or fixed-size) graph with the metadata as `_extra_files`."""

import warnings
from pathlib import Path

import torch

from deepconv_cli.errors import failure
from deepconv_cli.export.fold_bn import fold_batch_norms
from deepconv_cli.export.metadata import FIXED_KEY, INPUT_KEY, META_KEY, artefact_metadata, read_metadata
from deepconv_cli.files import reason
from deepconv_cli.models.artefact import Artefact
from deepconv_cli.models.checkpoint import ModelMeta
from deepconv_cli.models.interface import Classifier


def write_torchscript(model: Classifier, meta: ModelMeta, path: Path, fixed_size: bool = False) -> None:
    """Trace the exported wrapper (it has no data-dependent branch, so the trace holds for every input size)."""
    module, _ = fold_batch_norms(model.export_module(fixed_size))  # VGG-BN: one conv where there were two layers
    example = torch.full((1, 3, meta.crop_size, meta.crop_size), 128.0)
    with warnings.catch_warnings():  # torch.jit is deprecated upstream but is what `torch.jit.load` users need
        warnings.simplefilter("ignore", FutureWarning)
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(module, example)
        torch.jit.save(traced, str(path), _extra_files=artefact_metadata(meta, fixed_size))


def load_torchscript(path: Path) -> Artefact:
    extra = {META_KEY: "", INPUT_KEY: "", FIXED_KEY: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as e:  # noqa: BLE001 - any reader error (truncated archive, not a TorchScript file) is one line
        raise failure(f"cannot read TorchScript file {path}: {reason(e)}") from None
    meta, fixed = read_metadata({k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items() if v}, path)
    module.eval()
    return Artefact(module, meta, "torchscript", fixed)
