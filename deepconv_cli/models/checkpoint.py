"""Self-describing checkpoints: the metadata every artefact carries, and reading a network back from a .ckpt.

A deepconv checkpoint is a Lightning checkpoint whose `state_dict` holds the network under `model.` and whose
`deepconv` entry holds a `ModelMeta`: enough to rebuild the network and preprocess images exactly as in
training, so evaluate / export / predict / fine-tune need no second config.
"""

import pickle
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from deepconv_cli import __version__
from deepconv_cli.errors import failure
from deepconv_cli.files import existing_file, reason, staged_file
from deepconv_cli.models.interface import Classifier
from deepconv_cli.models.registry import build, get_spec, resolve_arch
from deepconv_cli.models.spec import paper_test_scales

STATE_PREFIX = "model."


@dataclass
class ModelMeta:
    """What a trained network is and how its inputs were prepared (all plain types, so JSON- and pickle-safe)."""

    arch: str
    num_classes: int
    classes: list[str]
    width: float = 1.0
    crop_size: int = 224
    dropout: float | None = 0.5
    # "mean_rgb": the paper's preprocessing, subtract `mean` (0..255) only; "imagenet_mean_std": imported
    # torchvision/timm weights, (x/255 - m)/s, stored here as mean = 255*m and scale = 1/(255*s); "mean_image":
    # AlexNet's per-pixel mean image (the state dict's normalize.mean_image; `mean` then holds its mean RGB).
    preprocessing: str = "mean_rgb"
    mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    scale: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    # training scale S: fixed when s_min == s_max, jittered in [s_min, s_max] otherwise
    s_min: int = 256
    s_max: int = 256
    # trained on crops of the central S x S square (AlexNet): 10-crop / multi-crop then use that square too
    center_square: bool = False
    # AlexNet PCA colour statistics of the training set (RGB in 0..1): eigenvalues and eigenvectors (columns)
    pca_eigval: list[float] = field(default_factory=list)
    pca_eigvec: list[list[float]] = field(default_factory=list)
    # architecture-specific builder options (e.g. LeNet-5's activation), passed to the registry's builder
    options: dict = field(default_factory=dict)
    version: str = __version__

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelMeta":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def build(self) -> Classifier:
        """An untrained network of this shape (through the registry), input normalisation already set."""
        try:
            arch = resolve_arch(self.arch)
        except ValueError as e:
            raise failure(f"this checkpoint's architecture is not available here: {e}") from None
        model = build(arch, num_classes=self.num_classes, width=self.width, crop_size=self.crop_size,
                      dropout=self.dropout, **self.options)
        model.normalize.set(self.mean, self.scale)
        return model

    def default_test_scales(self) -> list[int]:
        """The family's default test scales (`ArchSpec.test_scales`; the VGG paper's section 4.2 rule unless the
        model file says otherwise) for this crop and training scale."""
        try:
            test_scales = get_spec(self.arch).test_scales
        except ValueError:  # an architecture not registered here: the paper's rule
            test_scales = paper_test_scales
        return test_scales(self.crop_size, self.s_min, self.s_max)


def atomic_save(obj: object, path: str | Path) -> None:
    """torch.save through a temporary file in the same directory and a rename: never a half-written file."""
    with staged_file(path) as tmp:
        torch.save(obj, tmp)


def save_model_checkpoint(path: str | Path, model: Classifier, meta: ModelMeta) -> None:
    """Write a minimal deepconv checkpoint (what `import` produces): weights and metadata, no training state."""
    state = {STATE_PREFIX + k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_save({"state_dict": state, "deepconv": meta.to_dict()}, path)


def _foreign_kind(path: Path) -> str | None:
    """What a file that is no torch checkpoint looks like (an export deepconv wrote, ...), from its first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (OSError, zipfile.BadZipFile):
            return None
        return "a TorchScript export" if any(n.endswith("constants.pkl") or "/code/" in n for n in names) else None
    if path.suffix.lower() == ".onnx" or head[:1] == b"\x08" and b"\x12" in head[:16]:
        return "an ONNX export"
    if path.suffix.lower() == ".safetensors" or len(head) > 9 and head[8:10] == b'{"':
        return "a safetensors file"
    return None


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict, loaded without executing pickled code; user mistakes become one-line errors.

    Never suggests loading with pickled code enabled: a file that holds other pickled objects is refused as
    unsafe, and an export (ONNX, TorchScript, safetensors) is named as such with what to pass instead."""
    path = existing_file(path, "checkpoint")
    kind = _foreign_kind(path)
    if kind:
        raise failure(f"{path} is {kind}, not a deepconv checkpoint: `deepconv predict --ckpt` reads it as it is; "
                      "evaluate, fine-tune and export need the .ckpt it came from (RUN_DIR/best.ckpt)")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not for deepconv's users
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise failure(f"{path} is not a deepconv checkpoint and is unsafe to load: it holds pickled Python objects "
                      "beyond tensors and plain values, which could run code; pass a .ckpt written by deepconv "
                      "train / fine-tune, or turn plain weights into one with `deepconv import`") from None
    except Exception as e:  # noqa: BLE001 - truncated zip, not a torch file ...
        detail = "" if "weights_only" in str(e) else f" ({reason(e)})"
        raise failure(f"cannot read checkpoint {path}: truncated, damaged or not a checkpoint{detail}") from None
    if not isinstance(ckpt, dict) or "deepconv" not in ckpt or "state_dict" not in ckpt:
        raise failure(f"{path} is not a deepconv checkpoint (no 'deepconv' metadata); see `deepconv import`")
    return ckpt


def load_model(path: str | Path) -> tuple[Classifier, ModelMeta]:
    """The trained network (in eval mode, on CPU) and its metadata."""
    ckpt = read_checkpoint(path)
    meta = ModelMeta.from_dict(ckpt["deepconv"])
    model = meta.build()
    state = {k[len(STATE_PREFIX):]: v for k, v in ckpt["state_dict"].items() if k.startswith(STATE_PREFIX)}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise failure(f"checkpoint {path} does not match its own metadata: {reason(e)}") from None
    return model.eval(), meta
