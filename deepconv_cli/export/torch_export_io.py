"""torch.export export: the dense (or fixed-size) graph as an ExportedProgram `.pt2` (dynamic batch, height and
width), the metadata as its extra files; `torch.export.load(path).module()` runs it, in Python without deepconv
or compiled ahead of time (AOTInductor)."""

import io
from pathlib import Path

import torch
from torch.export import Dim

from deepconv_cli.compat.torch import sizes_may_be_one
from deepconv_cli.errors import failure
from deepconv_cli.export.metadata import FIXED_KEY, INPUT_KEY, META_KEY, artefact_metadata, read_metadata
from deepconv_cli.files import reason
from deepconv_cli.models.artefact import Artefact
from deepconv_cli.models.checkpoint import ModelMeta
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.registry import get_spec


def write_torch_export(model: Classifier, meta: ModelMeta, path: Path, fixed_size: bool = False) -> None:
    """Export on an example of 2 images whose score map is larger than 1 x 1 (torch.export treats 1 apart), every
    size >= the crop allowed; the archive is written through a buffer (torch.export wants a .pt2 name, the
    staged file has another)."""
    crop, stride = meta.crop_size, get_spec(meta.arch).stride
    batch = Dim("batch", min=1)
    if fixed_size:
        example, dims = (2, 3, crop, crop), {0: batch}
    else:
        example = (2, 3, crop + 2 * stride + 3, crop + 3 * stride + 5)
        dims = {0: batch, 2: Dim("height", min=crop), 3: Dim("width", min=crop)}
    try:
        with torch.no_grad(), sizes_may_be_one():
            program = torch.export.export(model.export_module(fixed_size), (torch.full(example, 128.0),),
                                          dynamic_shapes=(dims,))
    except Exception as e:  # noqa: BLE001 - torch.export's errors (a guard on the sizes, an op) are one line
        raise failure(f"torch.export cannot export this {meta.arch} network: {reason(e)}; nothing was written") \
            from None
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files=artefact_metadata(meta, fixed_size))
    path.write_bytes(buffer.getvalue())


def load_torch_export(path: Path) -> Artefact:
    extra = {META_KEY: "", INPUT_KEY: "", FIXED_KEY: ""}
    try:
        with open(path, "rb") as f:
            program = torch.export.load(io.BytesIO(f.read()), extra_files=extra)
    except Exception as e:  # noqa: BLE001 - any reader error (truncated archive, not an ExportedProgram) is one line
        raise failure(f"cannot read torch.export file {path}: {reason(e)}") from None
    meta, fixed = read_metadata({k: v.decode() if isinstance(v, bytes) else v for k, v in extra.items() if v}, path)
    return Artefact(program.module(), meta, "pt2", fixed)
