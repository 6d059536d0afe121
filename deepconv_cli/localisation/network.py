"""A localisation network: a registry classifier whose last layer predicts boxes; its checkpoint and its outputs.

SCR (single-class regression) has 4 outputs shared by all classes, PCR (per-class regression) 4 per class,
laid out class-major: outputs 4c..4c+3 are class c's (cx, cy, w, h). A localiser checkpoint is a deepconv
checkpoint (network under `model.`, `ModelMeta` under `deepconv`) plus a `deepconv_localiser` entry.
"""

from pathlib import Path
from typing import Literal

import torch
from torch import nn

from deepconv_cli.errors import failure
from deepconv_cli.files import reason
from deepconv_cli.models.checkpoint import STATE_PREFIX, ModelMeta, read_checkpoint

Regression = Literal["pcr", "scr"]
LOCALISER_KEY = "deepconv_localiser"


def regression_outputs(regression: str, num_classes: int) -> int:
    return 4 * num_classes if regression == "pcr" else 4


def replace_last_layer(model: nn.Module, outputs: int) -> None:
    """The network's last layer replaced by a randomly initialised one with `outputs` outputs."""
    model.replace_last_layer(outputs)


def select_boxes(out: torch.Tensor, regression: str, labels: torch.Tensor) -> torch.Tensor:
    """(N, 4) encoded boxes of class `labels` from the (N, outputs) regression outputs (SCR: the only box)."""
    if regression == "scr":
        return out[:, :4]
    return out.view(len(out), -1, 4)[torch.arange(len(out), device=out.device), labels]


def load_localiser(path: str | Path) -> tuple[nn.Module, ModelMeta, dict]:
    """The localisation network (eval mode, CPU), its metadata and its localiser entry (regression, outputs)."""
    ckpt = read_checkpoint(path)
    info = ckpt.get(LOCALISER_KEY)
    if not isinstance(info, dict) or info.get("regression") not in ("pcr", "scr"):
        raise failure(f"{path} is a classifier checkpoint, not a localiser (train one with `deepconv localise fit`)")
    meta = ModelMeta.from_dict(ckpt["deepconv"])
    model = meta.build()
    replace_last_layer(model, regression_outputs(info["regression"], meta.num_classes))
    state = {k[len(STATE_PREFIX):]: v for k, v in ckpt["state_dict"].items() if k.startswith(STATE_PREFIX)}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise failure(f"localiser checkpoint {path} does not match its own metadata: {reason(e)}") from None
    return model.eval(), meta, info
