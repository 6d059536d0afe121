"""Name -> metadata for every architecture: what `deepconv models` lists and what aliases the CLI accepts."""

from dataclasses import asdict, dataclass

from deepconv_cli.models.vgg import ARCHS, conv_specs, parameter_count

# Common names for the same networks (torchvision/timm call D "vgg16"); B-shallow and A-LRN, C have none there.
ALIASES = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
NOTES = {
    "A": "8 conv + 3 FC; trained from random init, the source of deepening",
    "A-LRN": "A with AlexNet LRN after the first conv (paper: no gain)",
    "B": "10 conv + 3 FC",
    "B-shallow": "B with each pair of 3x3 convs replaced by one 5x5 (section 4.1)",
    "C": "D with a 1x1 conv as the last layer of blocks 3-5",
    "D": "13 conv + 3 FC (VGG-16)",
    "E": "16 conv + 3 FC (VGG-19)",
}


@dataclass(frozen=True)
class ArchInfo:
    name: str
    alias: str
    weight_layers: int
    conv_layers: int
    parameters: int
    note: str


def resolve_arch(name: str) -> str:
    """An architecture name as the table spells it, from a table name or an alias, case-insensitively."""
    by_lower = {a.lower(): a for a in ARCHS} | ALIASES
    try:
        return by_lower[name.lower()]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHS)} (or {', '.join(ALIASES)})")


def arch_info(arch: str, num_classes: int = 1000, width: float = 1.0, crop_size: int = 224) -> ArchInfo:
    convs = len(list(conv_specs(arch)))
    alias = next((k for k, v in ALIASES.items() if v == arch), "")
    params = parameter_count(arch, num_classes, width, crop_size)
    return ArchInfo(arch, alias, convs + 3, convs, params, NOTES[arch])


def all_archs(**kwargs) -> list[dict]:
    return [asdict(arch_info(a, **kwargs)) for a in ARCHS]
