"""torchvision / timm VGG weights onto deepconv's layout, by a small pure function, and the checkpoint it makes.

torchvision `vgg11/13/16/19` (configs A/B/D/E): `features.N.{weight,bias}` for the convolutions, `classifier.0/3/6`
Linear layers (4096 x 25088, 4096 x 4096, classes x 4096). timm `vgg*`: the same `features.N`, then
`pre_logits.fc1` (a 7x7 conv), `pre_logits.fc2` (1x1 conv), `head.fc` (Linear). deepconv holds all three FC
layers conv-shaped, so the Linear weights are the same numbers reshaped: (4096, 25088) -> (4096, 512, 7, 7) in
torch's (C, H, W) flattening order, which is exactly how torchvision flattens the feature map.
Both expect ImageNet mean/std normalisation of a 0..1 image, recorded as preprocessing "imagenet_mean_std".
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from deepconv_cli.errors import failure, usage
from deepconv_cli.files import reason
from deepconv_cli.models.checkpoint import ModelMeta, save_model_checkpoint
from deepconv_cli.models.registry import registry
from deepconv_cli.models.vgg import CONFIGS, LRN, STRIDE, M, conv_specs

WEIGHT_MAP = f"{__name__}:map_state_dict"  # what the registry's VGG entries name as their import map


def importable() -> list[str]:
    """The registered architectures this map serves (torchvision/timm vgg11, 13, 16, 19: configs A, B, D, E)."""
    return [spec.name for spec in registry().values() if spec.weight_map == WEIGHT_MAP]
HEADS = {
    "torchvision": ("classifier.0", "classifier.3", "classifier.6"),
    "timm": ("pre_logits.fc1", "pre_logits.fc2", "head.fc"),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRAIN_SCALE = 256  # torchvision/timm evaluate at shorter side 256, centre crop 224


@dataclass
class Mapped:
    """The weights in deepconv's layout (no `normalize.*` buffers) and the network shape they imply."""

    arch: str
    state: dict[str, torch.Tensor]
    num_classes: int
    crop_size: int


def conv_feature_indices(arch: str) -> list[int]:
    """Index in deepconv's `features` Sequential of each convolution of `arch` (conv+ReLU take 2 slots)."""
    positions, index = [], 0
    for token in CONFIGS[arch]:
        if token in (M, LRN):
            index += 1
        else:
            positions.append(index)
            index += 2
    return positions


def _conv_keys(state: dict[str, torch.Tensor]) -> list[int]:
    indices = [int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight")]
    return sorted(i for i in indices if state[f"features.{i}.weight"].dim() == 4)


def _infer_arch(shapes: list[tuple[int, ...]], arch: str) -> str:
    """The config whose convolutions have exactly these weight shapes (out, in, k, k)."""
    candidates = importable()
    matches = [a for a in candidates if [(o, i, k, k) for k, i, o in conv_specs(a)] == shapes]
    if arch == "auto":
        if not matches:
            raise failure(
                f"{len(shapes)} convolutions of these shapes match none of the configs {', '.join(candidates)}"
            )
        return matches[0]
    if arch not in matches:
        found = f"config {matches[0]}" if matches else f"{len(shapes)} convolutions matching no config"
        raise failure(f"--arch {arch} does not fit these weights: they hold {found}")
    return arch


def map_state_dict(state: dict[str, torch.Tensor], source: str, arch: str = "auto") -> Mapped:
    """torchvision or timm VGG state dict -> deepconv VGG state dict (pure: no file, no network built)."""
    if any(k.endswith("running_mean") for k in state):
        raise failure("batch-normalised VGG weights (vgg*_bn) have no deepconv configuration; use plain vgg11/13/16/19")
    fc_names = HEADS[source]
    missing = [f"{n}.weight" for n in fc_names if f"{n}.weight" not in state]
    if missing:
        raise failure(f"not a {source} VGG state dict: no {missing[0]} (is --from right?)")
    sources = _conv_keys(state)
    shapes = [tuple(state[f"features.{i}.weight"].shape) for i in sources]
    arch = _infer_arch(shapes, arch)
    channels = shapes[-1][0]
    w1, w3 = state[f"{fc_names[0]}.weight"], state[f"{fc_names[2]}.weight"]
    hidden, num_classes = w1.shape[0], w3.shape[0]
    kernel = round((w1[0].numel() / channels) ** 0.5)
    head_shapes = {
        "fc1": (hidden, channels, kernel, kernel),
        "fc2": (hidden, hidden, 1, 1),
        "fc3": (num_classes, hidden, 1, 1),
    }
    out: dict[str, torch.Tensor] = {}
    try:
        for src, dst in zip(sources, conv_feature_indices(arch)):
            out[f"features.{dst}.weight"] = state[f"features.{src}.weight"]
            out[f"features.{dst}.bias"] = state[f"features.{src}.bias"]
        for (name, shape), src in zip(head_shapes.items(), fc_names):
            out[f"classifier.{name}.weight"] = state[f"{src}.weight"].reshape(shape)
            out[f"classifier.{name}.bias"] = state[f"{src}.bias"]
    except (KeyError, RuntimeError) as e:  # a missing bias, an FC layer of the wrong size
        raise failure(f"not a {source} VGG state dict: {reason(e)}") from None
    return Mapped(arch, out, num_classes, kernel * STRIDE)


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


def imagenet_meta(mapped: Mapped, classes: list[str]) -> ModelMeta:
    """ModelMeta for imported weights: (x/255 - m)/s written as (x - 255 m) * 1/(255 s)."""
    return ModelMeta(
        arch=mapped.arch,
        num_classes=mapped.num_classes,
        classes=classes,
        crop_size=mapped.crop_size,
        preprocessing="imagenet_mean_std",
        mean=[255.0 * m for m in IMAGENET_MEAN],
        scale=[1.0 / (255.0 * s) for s in IMAGENET_STD],
        s_min=TRAIN_SCALE,
        s_max=TRAIN_SCALE,
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
        raise failure(f"{weights}: mapped weights do not fit VGG-{mapped.arch}: {reason(e)}") from None
    save_model_checkpoint(out, model, meta)
    return meta
