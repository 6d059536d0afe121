"""ArchSpec: one registry entry (what a model file declares about each architecture it builds)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from deepconv_cli.models.interface import Classifier


@dataclass(frozen=True)
class ArchSpec:
    """One architecture. `builder(num_classes, width, crop_size, dropout, init, init_std, **options)`.

    `dropout=None` and `init="paper"` mean the family's own (the paper's) choice. `paper_params` is what the
    source paper's table says the network has; `weight_map` names the function ("module:function") that maps
    foreign (torchvision/timm) state dicts onto this layout, for `deepconv import`.
    """

    name: str
    family: str
    builder: Callable[..., Classifier]
    aliases: tuple[str, ...] = ()
    note: str = ""
    default_crop: int = 224
    options: Mapping = field(default_factory=lambda: MappingProxyType({}))
    paper_params: str = ""
    weight_map: str = ""

    def build(self, num_classes: int = 1000, width: float = 1.0, crop_size: int | None = None,
              dropout: float | None = None, init: str = "normal", init_std: float = 0.01, **options) -> Classifier:
        kwargs = dict(self.options) | options
        crop = self.default_crop if crop_size is None else crop_size
        return self.builder(num_classes=num_classes, width=width, crop_size=crop, dropout=dropout, init=init,
                            init_std=init_std, **kwargs)
