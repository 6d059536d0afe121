"""`deepconv import --from torchvision|timm WEIGHTS --out X.ckpt`: weights from elsewhere as a deepconv checkpoint,
through the map each family declares in its model file (today VGG's, for torchvision and timm)."""

from deepconv_cli.cli.options import parse_options
from deepconv_cli.files import existing_file

ALIASES = {"--from": "--source"}


def import_weights(
    weights: str,
    out: str,
    source: str = "torchvision",
    arch: str = "auto",
    classes: str | None = None,
) -> None:
    """Turn torchvision's vgg11/13/16/19 or timm's vgg* weights into a deepconv checkpoint (configs A/B/D/E).

    The checkpoint records ImageNet mean/std preprocessing (not the paper's mean-RGB subtraction), crop 224 and
    S = 256, so evaluate, predict, export and fine-tune --init-from work on it as on a trained one. Weights are
    read without executing pickled code (torch.load weights_only=True, or safetensors).

    Args:
        out: the deepconv checkpoint to write (.ckpt).
        source: (--from) the layout: torchvision (classifier.0/3/6) or timm (pre_logits.fc1/fc2, head.fc), or what a
            plug-in family declares.
        arch: the architecture (name or alias); auto infers it from the weights (VGG: 8 -> A, 10 -> B, 13 -> D,
            16 -> E convolutions).
        classes: a text file with one class name per line (default: "0" .. "N-1").
    """
    existing_file(weights, "weights file")  # before torch is imported: a mistyped path answers in a second
    from deepconv_cli.export.import_weights import import_checkpoint
    from deepconv_cli.models.registry import check_arch, get_spec

    if arch != "auto":
        arch = check_arch(arch)  # a typo: one line with a suggestion, before any file is read
    meta = import_checkpoint(weights, out, source, arch, classes)
    print(
        f"wrote {out}: {get_spec(meta.arch).display_name} from {source} weights, {meta.num_classes} classes, "
        f"crop {meta.crop_size}, preprocessing imagenet_mean_std"
    )


def main(argv: list[str]) -> int:
    weights = ("weights", "the state dict: .pth/.pt (e.g. vgg16-397923af.pth) or .safetensors")
    import_weights(**parse_options(import_weights, argv, "deepconv import", ALIASES, weights))
    return 0
