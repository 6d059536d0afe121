"""safetensors export: the network's weights (no code, no pickle) with the metadata in the file header."""

from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from deepconv_cli.errors import failure
from deepconv_cli.export.metadata import artefact_metadata, read_metadata
from deepconv_cli.files import reason
from deepconv_cli.models.checkpoint import ModelMeta
from deepconv_cli.models.interface import Classifier


def write_safetensors(model: Classifier, meta: ModelMeta, path: Path, fixed_size: bool = False) -> None:
    """The network's state dict as stored by `load_model`'s network (`fixed_size` does not apply to weights)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=artefact_metadata(meta))


def load_safetensors_model(path: Path) -> tuple[Classifier, ModelMeta]:
    """The network in eval mode, rebuilt from the header's ModelMeta and the stored weights."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata()
            names = f.keys()
            state = {k: f.get_tensor(k) for k in names}
    except Exception as e:  # noqa: BLE001 - any reader error (truncated file, bad header) is one line
        raise failure(f"cannot read safetensors file {path}: {reason(e)}") from None
    meta, _ = read_metadata(header, path)
    model = meta.build()
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise failure(f"{path}: weights do not match their own metadata: {reason(e)}") from None
    return model.eval(), meta
