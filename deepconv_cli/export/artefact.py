"""Open any model file deepconv reads: a .ckpt, a torch.export .pt2, a TorchScript .pt, an .onnx or a .safetensors,
metadata included.

The kind is read from the suffix for ONNX and safetensors and from the zip's contents otherwise (a TorchScript
archive holds `code/` and `constants.pkl`, a torch.export archive `archive_format` and `models/`; a checkpoint
neither), so a checkpoint named .pt still opens. Nothing here unpickles arbitrary objects: checkpoints load with
`weights_only=True`, TorchScript and torch.export archives through their own deserialisers, safetensors and ONNX
hold no code.
"""

import zipfile
from pathlib import Path

from deepconv_cli.errors import usage
from deepconv_cli.export.onnx_io import load_onnx
from deepconv_cli.export.safetensors_io import load_safetensors_model
from deepconv_cli.export.torch_export_io import load_torch_export
from deepconv_cli.export.torchscript_io import load_torchscript
from deepconv_cli.files import existing_file
from deepconv_cli.models.artefact import Artefact
from deepconv_cli.models.checkpoint import ModelMeta, load_model
from deepconv_cli.models.interface import Classifier


def artefact_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".safetensors":
        return "safetensors"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
                return "torchscript"
            if any(name.endswith("/archive_format") for name in names) and any("/models/" in n for n in names):
                return "pt2"
    return "checkpoint"


def load_network(path: str | Path) -> tuple[Classifier, ModelMeta]:
    """A PyTorch network (eval mode) from a .ckpt or .safetensors: what export starts from."""
    path = existing_file(path, "model file")
    kind = artefact_kind(path)
    if kind == "safetensors":
        return load_safetensors_model(path)
    if kind == "checkpoint":
        return load_model(path)
    raise usage(f"{path} is a {kind} export; start from a .ckpt or .safetensors file")


def load_artefact(path: str | Path, kind: str | None = None) -> Artefact:
    """Any model file as class-score function + metadata; exports run through their own runtime.

    `kind` (checkpoint, pt2, torchscript, onnx or safetensors) overrides the detection, for files whose name says
    nothing (export's staged files).
    """
    path = existing_file(path, "model file")
    kind = kind or artefact_kind(path)
    if kind == "onnx":
        return load_onnx(path)
    if kind == "torchscript":
        return load_torchscript(path)
    if kind == "pt2":
        return load_torch_export(path)
    model, meta = load_safetensors_model(path) if kind == "safetensors" else load_model(path)
    return Artefact(model, meta, kind)
