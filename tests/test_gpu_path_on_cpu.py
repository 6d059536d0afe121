"""The GPU defaults executed on the CPU: torch.compile (inductor's CPU backend) trains and agrees with eager, no
registered network breaks its graph, bf16 autocast and channels_last steps agree with fp32, and compiled and
eager checkpoints load into each other."""

import time

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from deepconv_cli.models.registry import build, registry
from deepconv_cli.training.module import ClassifierModule, sgd_implementation

SMALL_CROP = {"alexnet": 96, "alexnet-1tower": 96, "zfnet": 64, "googlenet": 96}  # the smallest each accepts


def batches(n: int = 4, batch: int = 8, crop: int = 32) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n * batch, 3, crop, crop), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n * batch,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch)


class Module(ClassifierModule):
    """deepconv's module without its plateau scheduler (it steps on a validation metric these steps skip)."""

    def configure_optimizers(self):
        return super().configure_optimizers()["optimizer"]


class Losses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        self.losses.append(float(outputs["loss"]))


def fit(tmp_path, steps: int = 4, precision: str = "32-true", **module_options) -> tuple[ClassifierModule, list]:
    torch.manual_seed(0)
    module = Module("A", num_classes=10, width=0.0625, crop_size=32, dropout=0.0, init="glorot", **module_options)
    losses = Losses()
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, precision=precision, callbacks=[losses],
                        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, batches(steps))
    return module, losses.losses


@pytest.mark.slow
def test_compiled_training_agrees_with_eager_and_checkpoints_are_interchangeable(tmp_path):
    started = time.perf_counter()
    compiled, compiled_losses = fit(tmp_path, compile=True)
    assert compiled.compiled and time.perf_counter() - started < 120
    eager, eager_losses = fit(tmp_path, compile=False)
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-4, abs=1e-5)  # dropout off: the same steps
    assert eager_losses[-1] < eager_losses[0]  # it learned something in 4 steps
    state = compiled.state_dict()
    assert not [k for k in state if "_orig_mod" in k]  # in-place compile: the names of an eager network
    fresh = ClassifierModule("A", num_classes=10, width=0.0625, crop_size=32, dropout=0.0, compile=False)
    fresh.load_state_dict(state)  # compiled -> eager, strict
    for name, value in eager.state_dict().items():
        assert torch.allclose(state[name], value, rtol=1e-4, atol=1e-5), name
    again = ClassifierModule("A", num_classes=10, width=0.0625, crop_size=32, dropout=0.0, compile=True)
    again.configure_model()
    again.load_state_dict(eager.state_dict())  # eager -> compiled, strict


def test_bf16_autocast_and_channels_last_steps_agree_with_fp32(tmp_path):
    _, fp32 = fit(tmp_path, steps=2)
    _, nhwc = fit(tmp_path, steps=2, channels_last=True)
    _, bf16 = fit(tmp_path, steps=2, precision="bf16-mixed")
    assert len(fp32) == len(nhwc) == len(bf16) == 2
    assert nhwc == pytest.approx(fp32, rel=1e-4)
    assert bf16 == pytest.approx(fp32, rel=2e-2)  # bf16 keeps 8 bits of mantissa


@pytest.mark.slow
def test_no_registered_network_breaks_its_graph_in_forward_and_loss():
    y = torch.tensor([0, 1])
    for name in registry():
        crop = SMALL_CROP.get(name, 32)
        try:
            net = build(name, num_classes=5, width=0.125, crop_size=crop, init="glorot").train()
        except ValueError:  # a network with one width (LeNet-5: its connection table)
            net = build(name, num_classes=5, crop_size=crop, init="glorot").train()

        def step(x, y, net=net):
            scores, aux = net.forward_train(x)
            return F.cross_entropy(scores, y) + sum(F.cross_entropy(a, y) for a in aux)

        torch._dynamo.reset()
        explained = torch._dynamo.explain(step)(torch.randn(2, 3, crop, crop), y)
        assert explained.graph_break_count == 0, f"{name}: {[str(b.reason) for b in explained.break_reasons]}"
        assert explained.graph_count == 1, name


def test_sgd_is_foreach_on_cpu_by_default_and_every_implementation_updates_alike(tmp_path):
    assert sgd_implementation("auto", "cuda") == {"fused": True, "foreach": False}
    runs = {impl: fit(tmp_path, steps=2, sgd_impl=impl) for impl in ("auto", "fused", "for-loop")}
    chosen = runs["auto"][0].trainer.optimizers[0].defaults
    assert (chosen["foreach"], chosen["fused"]) == (True, False)
    assert runs["fused"][0].trainer.optimizers[0].defaults["fused"]
    for impl in ("fused", "for-loop"):
        assert runs[impl][1] == pytest.approx(runs["auto"][1], rel=1e-5), impl
