"""Artefacts outside the training loop: TorchScript, ONNX and safetensors exports,
and imported torchvision/timm weights."""
