"""ArchSpec: one registry entry (what a model file declares about each architecture it builds), and WeightMap: how
a family reads other libraries' weights."""

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch

from deepconv_cli.models.interface import Classifier

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def paper_test_scales(crop: int, s_min: int, s_max: int) -> list[int]:
    """The VGG paper's test scales (section 4.2): {S-32, S, S+32} for fixed S, {Smin, mid, Smax} for jittered S.

    The offset 32 belongs to 224-pixel crops; for other crop sizes it scales with the crop (4 for 32-pixel crops),
    and no scale goes below the crop.
    """
    if s_min == s_max:
        step = max(1, round(32 * crop / 224))
        return [max(crop, s_min - step), s_min, s_min + step]
    return [s_min, (s_min + s_max) // 2, s_max]


@dataclass
class ForeignWeights:
    """A foreign state dict in deepconv's layout (no `normalize.*` buffers), the network shape it implies, and the
    preprocessing its source library trained with: (x/255 - mean)/std, evaluated at shorter side `test_scale`."""

    arch: str
    state: dict[str, torch.Tensor]
    num_classes: int
    crop_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    test_scale: int = 256


@dataclass(frozen=True)
class WeightMap:
    """How state dicts written by other libraries (`sources`, the names `deepconv import --from` accepts) become
    this family's: `convert(state, source, arch)` -> ForeignWeights, pure (no file, no network built), raising a
    one-line DeepconvError when the weights do not fit. `arch` is a registered name, or "auto" to infer it."""

    sources: tuple[str, ...]
    convert: Callable[[dict[str, torch.Tensor], str, str], ForeignWeights]


@dataclass(frozen=True)
class ArchSpec:
    """One architecture. `builder(num_classes, crop_size, ..., **options)`: it names in its signature the common
    options it uses (of num_classes, width, crop_size, dropout, init, init_std) and is passed only those.

    `dropout=None` and `init="paper"` mean the family's own (the paper's) choice. `title` is the name people use
    ("VGG-D", "AlexNet"); `paper_params` is what the source paper's table says the network has; `stride` is the
    trunk's total downsampling (input pixels per score-map cell); `test_scales(crop, s_min, s_max)` the default
    evaluation scales; `weight_map` reads other libraries' state dicts for `deepconv import` (None: none).
    """

    name: str
    family: str
    builder: Callable[..., Classifier]
    aliases: tuple[str, ...] = ()
    note: str = ""
    default_crop: int = 224
    options: Mapping = field(default_factory=lambda: MappingProxyType({}))
    paper_params: str = ""
    weight_map: WeightMap | None = None
    stride: int = 32
    title: str = ""
    test_scales: Callable[[int, int, int], list[int]] = paper_test_scales

    @property
    def display_name(self) -> str:
        return self.title or self.name

    def build(self, num_classes: int = 1000, width: float = 1.0, crop_size: int | None = None,
              dropout: float | None = None, init: str = "normal", init_std: float = 0.01, **options) -> Classifier:
        """The network; the builder receives only the common options its signature names (a family without
        dropout takes no `dropout`), and one it lacks is an error only when set away from its default."""
        crop = self.default_crop if crop_size is None else crop_size
        given = {"num_classes": num_classes, "width": width, "crop_size": crop, "dropout": dropout, "init": init,
                 "init_std": init_std}
        params = inspect.signature(self.builder).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return self.builder(**given, **(dict(self.options) | options))
        defaults = COMMON_DEFAULTS | {"crop_size": self.default_crop}
        for name, value in given.items():
            if name not in params and value != defaults.get(name, value):
                raise ValueError(f"{self.display_name} takes no {name} option (got {value!r})")
        return self.builder(**{k: v for k, v in given.items() if k in params}, **(dict(self.options) | options))


# what callers pass when the user set nothing: a builder that does not name one of these may ignore it
COMMON_DEFAULTS = {"width": 1.0, "dropout": None, "init": "normal", "init_std": 0.01}
