"""The metadata every exported artefact carries (string key -> string value), and reading it back.

The same three keys go into the safetensors header, ONNX `metadata_props` and TorchScript `_extra_files`:
`deepconv` (the ModelMeta as JSON: architecture, class names, mean/scale/preprocessing, crop size, training
scales, version), `input` (what the graph takes) and `fixed_size` ("true" for the crop-only classifier).
"""

import json
from pathlib import Path

from deepconv_cli.errors import failure
from deepconv_cli.models.checkpoint import ModelMeta

META_KEY, INPUT_KEY, FIXED_KEY = "deepconv", "input", "fixed_size"


def input_description(meta: ModelMeta, fixed_size: bool) -> str:
    size = f"H = W = {meta.crop_size}" if fixed_size else f"any H, W >= {meta.crop_size}"
    return f"RGB 0..255 float, NCHW, {size}; normalisation ({meta.preprocessing}) is inside the model"


def artefact_metadata(meta: ModelMeta, fixed_size: bool = False) -> dict[str, str]:
    return {
        META_KEY: json.dumps(meta.to_dict()),
        INPUT_KEY: input_description(meta, fixed_size),
        FIXED_KEY: "true" if fixed_size else "false",
    }


def read_metadata(metadata: dict[str, str] | None, path: str | Path) -> tuple[ModelMeta, bool]:
    """(ModelMeta, fixed_size) from an artefact's metadata, or a one-line error naming the file."""
    if not metadata or META_KEY not in metadata:
        raise failure(f"{path} carries no deepconv metadata (was it written by `deepconv export`?)")
    try:
        meta = ModelMeta.from_dict(json.loads(metadata[META_KEY]))
    except (ValueError, TypeError) as e:
        raise failure(f"{path}: unreadable deepconv metadata: {e}") from None
    return meta, metadata.get(FIXED_KEY) == "true"
