"""The one list of architectures: name -> builder, family, aliases, notes, default crop, stride, test scales and
import map (all declared in the family's model file), and FLOPs computed from the network itself (built on the meta
device: no memory, no time).

Each model file (models/vgg.py, models/alexnet.py, ...) ends with `SPECS = [ArchSpec(...), ...]`; a family is
registered by one line in `FAMILIES`. Networks outside the package register the same way through the
`DEEPCONV_MODELS` environment variable (comma-separated module names, each with a `SPECS` list). A name or alias
registered twice (case-insensitively, plug-ins included) is refused, never silently replaced.
"""

import difflib
import importlib
import os

import torch

from deepconv_cli.errors import usage
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.spec import ArchSpec

FAMILIES = (
    "deepconv_cli.models.vgg",
    "deepconv_cli.models.alexnet",
    "deepconv_cli.models.lenet",
    "deepconv_cli.models.nin",
    "deepconv_cli.models.googlenet",
)
PLUGINS_ENV = "DEEPCONV_MODELS"


def _load() -> dict[str, ArchSpec]:
    modules = list(FAMILIES) + [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    specs: dict[str, ArchSpec] = {}
    owner: dict[str, str] = {}  # every name and alias, lower-cased -> the module that registered it
    for module in modules:
        for spec in importlib.import_module(module).SPECS:
            for name in (spec.name, *spec.aliases):
                if name.lower() in owner:
                    raise usage(f"architecture name {name!r} of {module} is already registered by {owner[name.lower()]}"
                                f" (names and aliases must be unique; rename it in {module})")
                owner[name.lower()] = module
            specs[spec.name] = spec
    return specs


def registry() -> dict[str, ArchSpec]:
    """Every registered architecture by name (families first, then DEEPCONV_MODELS plug-ins)."""
    return _load()


def accepted_names() -> tuple[str, ...]:
    """Names and aliases: what `--model.arch` accepts."""
    specs = registry()
    return tuple(specs) + tuple(a for s in specs.values() for a in s.aliases)


def resolve_arch(name: str) -> str:
    """The registered name of an architecture given by name or alias, case-insensitively; ValueError otherwise."""
    specs = registry()
    by_lower = {n.lower(): n for n in specs} | {a.lower(): s.name for s in specs.values() for a in s.aliases}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    spelled = {n.lower(): n for n in specs} | {a.lower(): a for s in specs.values() for a in s.aliases}
    near = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    hint = f"; did you mean {spelled[near[0]]}?" if near else ""  # as registered: vgg166 -> vgg16, not D
    raise ValueError(f"unknown architecture {name!r}{hint} (`deepconv models` lists them)")


def check_arch(name: str) -> str:
    """`resolve_arch` for a name typed by a user: an unknown one is a one-line usage error (exit 2) with a
    suggestion."""
    try:
        return resolve_arch(name)
    except ValueError as e:
        raise usage(str(e)) from None


def get_spec(name: str) -> ArchSpec:
    return registry()[resolve_arch(name)]


def build(arch: str, **kwargs) -> Classifier:
    return get_spec(arch).build(**kwargs)


def build_meta(arch: str, **kwargs) -> Classifier:
    """The network on the meta device: shapes and counts without allocating or initialising weights."""
    with torch.device("meta"):
        return build(arch, **kwargs)


def flop_count(arch: str, crop_size: int | None = None, **kwargs) -> int:
    """FLOPs (multiply-adds x 2) of one forward pass on one crop, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_meta(arch, crop_size=crop_size, **kwargs).eval()
    crop = model.crop_size
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, 3, crop, crop, device="meta"))
    return counter.get_total_flops()
