"""What `deepconv models` prints: one row per registered architecture, and one network's layer-by-layer table.

Everything is computed from the network the registry builds (on the meta device, so full-size networks cost
neither memory nor time): weight layers, parameters (with and without training-only auxiliary heads), FLOPs
and each layer's output size.
"""

from dataclasses import asdict, dataclass

import torch
from torch import nn

from deepconv_cli.models.registry import build_meta, flop_count, get_spec, registry


@dataclass(frozen=True)
class ArchInfo:
    name: str
    family: str
    alias: str
    weight_layers: int
    parameters: int
    parameters_training: int  # with auxiliary classifiers (GoogLeNet), used in training only
    paper: str
    crop_size: int
    gflops: float
    note: str


def arch_info(arch: str, num_classes: int = 1000, width: float = 1.0, crop_size: int | None = None) -> ArchInfo:
    spec = get_spec(arch)
    model = build_meta(spec.name, num_classes=num_classes, width=width, crop_size=crop_size)
    flops = flop_count(spec.name, num_classes=num_classes, width=width, crop_size=crop_size)
    return ArchInfo(
        spec.name, spec.family, ", ".join(spec.aliases), len(model.weight_layers()), model.inference_parameters(),
        sum(p.numel() for p in model.parameters()), spec.paper_params, model.crop_size, round(flops / 1e9, 3),
        spec.note,
    )


def all_archs(num_classes: int = 1000, width: float = 1.0, crop_size: int | None = None) -> list[dict]:
    """A row per architecture that exists at these settings; the others get a row with `error` saying why."""
    rows = []
    for a in registry():
        try:
            rows.append(asdict(arch_info(a, num_classes, width, crop_size)))
        except ValueError as e:  # e.g. LeNet-5 at another width, a crop too small for a network
            rows.append({"name": a, "error": str(e)})
    return rows


LEAVES = (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.LocalResponseNorm, nn.BatchNorm2d)


def layer_rows(arch: str, num_classes: int = 1000, width: float = 1.0, crop_size: int | None = None) -> list[dict]:
    """Each trunk layer, head layer and named block (`table_blocks`) with its output size on one crop, in order."""
    model = build_meta(arch, num_classes=num_classes, width=width, crop_size=crop_size).eval()
    blocks = tuple(getattr(model, "table_blocks", ()))
    rows: list[dict] = []

    def hook(name: str, module: nn.Module):
        def record(_m, _inputs, output):
            shape = tuple(output.shape[1:])
            params = sum(p.numel() for p in module.parameters())
            rows.append({"layer": name, "type": _describe(module), "output": "x".join(map(str, shape)),
                         "parameters": params})
        return record

    handles = []
    for name, module in model.named_modules():
        top = name.split(".")[0]
        if top in ("normalize", "aux") or not name:
            continue
        if isinstance(module, blocks) or (isinstance(module, LEAVES) and not _inside(name, model, blocks)):
            handles.append(module.register_forward_hook(hook(name, module)))
    crop = model.crop_size
    with torch.no_grad():  # the dense form calls every head layer as a module, so each one reports its output
        model.export_module(fixed_size=False)(torch.empty(1, 3, crop, crop, device="meta"))
    for h in handles:
        h.remove()
    return rows


def _inside(name: str, model: nn.Module, blocks: tuple[type, ...]) -> bool:
    parts = name.split(".")
    return any(isinstance(model.get_submodule(".".join(parts[:i])), blocks) for i in range(1, len(parts)))


def _describe(m: nn.Module) -> str:
    if hasattr(m, "describe"):
        return m.describe()
    if isinstance(m, nn.Conv2d):
        groups = f", {m.groups} groups" if m.groups > 1 else ""
        return f"conv {m.kernel_size[0]}x{m.kernel_size[1]}/{m.stride[0]}, {m.out_channels}{groups}"
    if isinstance(m, nn.MaxPool2d | nn.AvgPool2d):
        kind = "max" if isinstance(m, nn.MaxPool2d) else "avg"
        return f"{kind}-pool {m.kernel_size}/{m.stride}"
    if isinstance(m, nn.LocalResponseNorm):
        return f"LRN n={m.size}"
    if isinstance(m, nn.BatchNorm2d):
        return f"batch norm, {m.num_features}"
    return type(m).__name__
