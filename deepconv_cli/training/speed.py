"""GPU speed defaults of `deepconv train`: the Trainer's `precision: auto` and the GPU peaks behind model FLOP
utilisation (MFU).

`auto` is resolved before Lightning's Trainer is built, by the resolver evaluation uses too (models/precision.py):
bf16-mixed on a CUDA GPU that supports bf16 (Ampere and
later), 32-true on the CPU and on older GPUs (where `--trainer.precision 16-mixed` is the user's call). Any of
Lightning's precisions given with `--trainer.precision` is used as given.
"""

import re
from typing import Literal

import lightning as L

from deepconv_cli.compat.lightning import PRECISION_INPUT
from deepconv_cli.models.precision import device_facts, resolve_precision

# dense (no sparsity) bf16 tensor-core peaks in TFLOP/s of the GPUs we know, by the words of their CUDA names;
# MFU is measured against these
PEAK_BF16_TFLOPS = {"H100": 989.4, "H100 PCIE": 756.0, "H100 NVL": 835.0, "H200": 989.4, "H200 NVL": 835.0,
                    "GH200": 989.4, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}


def peak_tflops(device_name: str | None) -> float | None:
    """Dense bf16 peak (TFLOP/s) of a GPU by its CUDA name (e.g. "NVIDIA H100 80GB HBM3"); None when unknown."""
    words = set(re.split(r"[\s\-_]+", (device_name or "").upper()))
    known = [key for key in PEAK_BF16_TFLOPS if set(key.split()) <= words]
    return PEAK_BF16_TFLOPS[max(known, key=lambda key: len(key.split()))] if known else None


def mfu(images_per_second: float, forward_flops: float, peak: float | None) -> float | None:
    """Model FLOP utilisation (0..1): images/s x 3 forward passes' FLOPs (forward + backward) over `peak` TFLOP/s
    (all devices' peaks together); None without a peak."""
    if not peak:
        return None
    return images_per_second * 3 * forward_flops / (peak * 1e12)


class DeepconvTrainer(L.Trainer):
    """Lightning's Trainer with deepconv's precision default (`auto`, resolved before the Trainer is built)."""

    def __init__(self, *args, precision: Literal["auto"] | PRECISION_INPUT = "auto", **kwargs) -> None:
        """Lightning's Trainer; every option but `precision` is Lightning's own.

        Args:
            precision: "auto" (deepconv's default): bf16-mixed on a CUDA GPU with bf16 support, 32-true on the
                CPU and older GPUs; or any of Lightning's (32-true, bf16-mixed, 16-mixed, ...), used as given.
        """
        self.precision_note = ""
        if precision == "auto":
            accelerator = kwargs.get("accelerator", "auto")
            cuda, bf16, why = device_facts(accelerator, kwargs.get("strategy", "auto"))
            precision = resolve_precision("auto", accelerator, cuda, bf16)
            self.precision_note = f"precision {precision} (auto: {why}; --trainer.precision overrides)"
        super().__init__(*args, precision=precision, **kwargs)
