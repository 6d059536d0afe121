"""VGG architectures: the declarative table, dense-ready heads, initialisation and checkpoint reading."""

from deepconv_cli.models.vgg import ARCHS, CONFIGS, VGG

__all__ = ["ARCHS", "CONFIGS", "VGG"]
