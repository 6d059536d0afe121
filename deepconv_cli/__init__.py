"""deepconv: train, deepen, evaluate and export the very deep 3x3 ConvNets of Simonyan & Zisserman (VGG)."""

__version__ = "0.1.0"
