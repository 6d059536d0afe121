"""Other libraries' weights as a deepconv checkpoint: each family's `WeightMap` (declared in its model file and
reached through the registry) maps the state dict; this module reads the file, picks the map and writes the
checkpoint. It knows no architecture.
"""

from pathlib import Path

import torch
from safetensors.torch import load_file

from deepconv_cli.errors import DeepconvError, failure, usage
from deepconv_cli.files import reason
from deepconv_cli.models.checkpoint import ModelMeta, save_model_checkpoint
from deepconv_cli.models.registry import check_arch, get_spec, registry
from deepconv_cli.models.spec import ForeignWeights, WeightMap


def weight_maps(source: str) -> list[WeightMap]:
    """The registered families' maps that read `source` state dicts, in registry order (each once)."""
    maps: list[WeightMap] = []
    for spec in registry().values():
        if spec.weight_map is not None and source in spec.weight_map.sources and spec.weight_map not in maps:
            maps.append(spec.weight_map)
    return maps


def sources() -> list[str]:
    """Every `--from` some registered family reads."""
    return sorted({s for spec in registry().values() if spec.weight_map for s in spec.weight_map.sources})


def importable(source: str | None = None) -> list[str]:
    """The registered architectures with a weight map (that reads `source`, when given)."""
    return [spec.name for spec in registry().values()
            if spec.weight_map is not None and (source is None or source in spec.weight_map.sources)]


def map_state_dict(state: dict[str, torch.Tensor], source: str, arch: str = "auto") -> ForeignWeights:
    """`state` (written by `source`) in deepconv's layout, by the map of `arch`'s family, or for "auto" by the first
    family whose map accepts it (the last one's refusal is the error)."""
    if source not in sources():
        raise usage(f"unknown weights source {source!r}; registered families read: {', '.join(sources())}")
    if arch != "auto":
        spec = get_spec(check_arch(arch))
        if spec.weight_map is None or source not in spec.weight_map.sources:
            raise usage(f"{spec.display_name} has no map for {source} weights; these do: "
                        f"{', '.join(importable(source))}")
        return spec.weight_map.convert(state, source, spec.name)
    maps = weight_maps(source)
    for weight_map in maps[:-1]:
        try:
            return weight_map.convert(state, source, "auto")
        except (DeepconvError, KeyError, RuntimeError, ValueError):
            continue
    return maps[-1].convert(state, source, "auto")


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .pth/.pt (`torch.load(weights_only=True)`, no arbitrary pickles) or .safetensors.

    Training checkpoints that wrap the weights ({"state_dict": ...} or {"model": ...}) and DataParallel's
    `module.` prefix are unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise usage(f"weights file not found: {path}")
    try:
        if path.suffix.lower() == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any reader error (truncated file, foreign pickle) is one line
        raise failure(f"cannot read weights {path}: {reason(e)}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise failure(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def read_classes(path: str | Path | None, num_classes: int) -> list[str]:
    """One class name per line (blank lines ignored), or "0" .. "N-1"."""
    if path is None:
        return [str(i) for i in range(num_classes)]
    path = Path(path)
    if not path.is_file():
        raise usage(f"classes file not found: {path}")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != num_classes:
        raise usage(f"{path} lists {len(names)} class names but the weights have {num_classes} classes")
    return names


def imagenet_meta(mapped: ForeignWeights, classes: list[str]) -> ModelMeta:
    """ModelMeta for imported weights: (x/255 - m)/s written as (x - 255 m) * 1/(255 s)."""
    return ModelMeta(
        arch=mapped.arch,
        num_classes=mapped.num_classes,
        classes=classes,
        crop_size=mapped.crop_size,
        dropout=None,  # the family's own (VGG: 0.5); a family without dropout takes none
        preprocessing="imagenet_mean_std",
        mean=[255.0 * m for m in mapped.mean],
        scale=[1.0 / (255.0 * s) for s in mapped.std],
        s_min=mapped.test_scale,
        s_max=mapped.test_scale,
    )


def import_checkpoint(
    weights: str | Path, out: str | Path, source: str, arch: str = "auto", classes: str | None = None
) -> ModelMeta:
    """Read `weights`, map them, and write a deepconv checkpoint that loads back to the same numbers."""
    mapped = map_state_dict(read_weights(weights), source, arch)
    meta = imagenet_meta(mapped, read_classes(classes, mapped.num_classes))
    model = meta.build()
    buffers = {k: v for k, v in model.state_dict().items() if k.startswith("normalize.")}
    try:
        model.load_state_dict(mapped.state | buffers)
    except RuntimeError as e:
        title = get_spec(mapped.arch).display_name
        raise failure(f"{weights}: mapped weights do not fit {title}: {reason(e)}") from None
    save_model_checkpoint(out, model, meta)
    return meta
