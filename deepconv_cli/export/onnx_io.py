"""ONNX export (torch.export-based exporter): dynamic batch, height and width, metadata in `metadata_props`."""

from pathlib import Path

import onnx
import onnxruntime as ort
import torch

from deepconv_cli.errors import failure
from deepconv_cli.export.fold_bn import fold_batch_norms
from deepconv_cli.export.metadata import artefact_metadata, read_metadata
from deepconv_cli.files import reason
from deepconv_cli.models.artefact import Artefact
from deepconv_cli.models.checkpoint import ModelMeta
from deepconv_cli.models.interface import Classifier

INPUT_NAME, OUTPUT_NAME = "image", "scores"


def write_onnx(model: Classifier, meta: ModelMeta, path: Path, fixed_size: bool = False) -> None:
    """Export with batch always dynamic and height/width dynamic (>= crop) unless `fixed_size`."""
    module, _ = fold_batch_norms(model.export_module(fixed_size))  # VGG-BN: one conv where there were two layers
    crop = meta.crop_size
    example = torch.full((1, 3, crop, crop), 128.0)
    dims = {0: torch.export.Dim("batch", min=1)}
    if not fixed_size:
        dims |= {2: torch.export.Dim("height", min=crop), 3: torch.export.Dim("width", min=crop)}
    try:
        with torch.inference_mode(False), torch.no_grad():
            program = torch.onnx.export(
                module, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": dims}, verbose=False,
            )
    except Exception as e:  # noqa: BLE001 - an operation torch.export cannot trace: one line, not its report
        raise failure(f"cannot export {meta.arch} to ONNX: {reason(e)}") from None
    proto = program.model_proto
    proto.producer_name = "deepconv"
    for key, value in artefact_metadata(meta, fixed_size).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(path))


class OnnxScores:
    """Runs an ONNX graph through onnxruntime on CPU, taking and returning torch tensors."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.input = session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().float().contiguous().cpu().numpy()
        return torch.from_numpy(self.session.run(None, {self.input: array})[0])


def load_onnx(path: Path) -> Artefact:
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - any reader error (truncated protobuf, not an ONNX file) is one line
        raise failure(f"cannot read ONNX file {path}: {reason(e)}") from None
    meta, fixed = read_metadata(session.get_modelmeta().custom_metadata_map, path)
    return Artefact(OnnxScores(session), meta, "onnx", fixed)
