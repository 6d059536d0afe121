"""The arithmetic precision a network runs in, one resolver for training and evaluation: `auto` is bf16-mixed on a
CUDA GPU that supports bf16 (Ampere and later) and 32-true elsewhere (the CPU, older GPUs).

Names are Lightning's (32-true, bf16-mixed, 16-mixed, ...); `bf16` and `fp32`, evaluate's spellings, are
bf16-mixed and 32-true. Training hands the resolved name to Lightning's Trainer; evaluation runs its forward
passes under `autocast`, and keeps the network and its inputs channels-last on CUDA (cuDNN's fastest
convolutions). Posteriors are always computed and averaged in fp32.
"""

import contextlib

import torch

ALIASES = {"bf16": "bf16-mixed", "fp32": "32-true"}
CUDA_ACCELERATORS = ("auto", "gpu", "cuda")
FORK_STRATEGIES = ("fork", "notebook")  # strategies that fork after the Trainer is built: CUDA must stay untouched


def resolve_precision(requested: str | int, accelerator: object, cuda_available: bool, bf16_supported: bool) -> str:
    """Lightning's precision name for a deepconv `precision` setting, given the device facts.

    "auto": bf16-mixed when the run is on CUDA (accelerator auto/gpu/cuda, or a cuda device, and a CUDA GPU
    present) and the GPU supports bf16, else 32-true. "bf16"/"fp32" are bf16-mixed/32-true; anything else is
    returned unchanged (as a string).
    """
    if requested != "auto":
        return ALIASES.get(str(requested), str(requested))
    name = accelerator if isinstance(accelerator, str) else type(accelerator).__name__.removesuffix("Accelerator")
    on_cuda = cuda_available and name.lower().split(":")[0] in CUDA_ACCELERATORS
    return "bf16-mixed" if on_cuda and bf16_supported else "32-true"


def device_facts(accelerator: object, strategy: object = "auto") -> tuple[bool, bool, str]:
    """(CUDA GPU present, it supports bf16, why) without initialising CUDA where a fork follows."""
    from lightning.fabric.accelerators import CUDAAccelerator

    cuda = CUDAAccelerator.is_available()  # NVML count: does not initialise CUDA
    name = accelerator if isinstance(accelerator, str) else type(accelerator).__name__
    if not cuda or name.lower().startswith("cpu"):
        return cuda, False, "no CUDA GPU in use"
    if any(word in str(strategy) for word in FORK_STRATEGIES):
        return cuda, False, "the GPU is not probed before a fork strategy starts"
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return True, True, f"{torch.cuda.get_device_name(0)} supports bf16"
    return True, False, f"{torch.cuda.get_device_name(0)} has no bf16 tensor cores"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context evaluation's forward passes run in: bf16 autocast for bf16-mixed, nothing for 32-true."""
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Channels-last weights on CUDA (inputs follow via `as_input`); unchanged elsewhere."""
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model


def as_input(batch: torch.Tensor) -> torch.Tensor:
    """A 0..255 uint8/float NCHW batch as the network's float input, channels-last on CUDA."""
    x = batch.float()
    return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x
