"""Training speed defaults: precision auto, the per-epoch throughput columns, the compile pause's one line."""

import csv
import math
import time

import pytest
import torch
import yaml
from helpers import QUICKSTART_A
from torch.utils.data import DataLoader, Dataset

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.models.precision import resolve_precision
from deepconv_cli.training.module import ClassifierModule
from deepconv_cli.training.speed import DeepconvTrainer, mfu, peak_tflops
from deepconv_cli.training.throughput import EpochThroughput


class _NoScheduler(ClassifierModule):
    """The module without its plateau scheduler (which steps on a validation metric these runs skip)."""

    def configure_optimizers(self):
        return super().configure_optimizers()["optimizer"]


@pytest.mark.parametrize(("accelerator", "cuda", "bf16", "expected"), [
    ("auto", True, True, "bf16-mixed"),     # an H100 / A100: bf16 tensor cores
    ("gpu", True, True, "bf16-mixed"),
    ("cuda", True, True, "bf16-mixed"),
    ("auto", True, False, "32-true"),       # a V100: no bf16, full precision unless the user asks for 16-mixed
    ("auto", False, False, "32-true"),      # a CPU-only machine
    ("cpu", True, True, "32-true"),         # a GPU machine told to train on the CPU
])
def test_auto_precision_follows_the_device(accelerator, cuda, bf16, expected):
    assert resolve_precision("auto", accelerator, cuda, bf16) == expected


@pytest.mark.parametrize("given", ["32-true", "bf16-mixed", "16-mixed", 64])
def test_a_given_precision_is_kept_whatever_the_device(given):
    for cuda, bf16 in ((True, True), (False, False)):
        assert resolve_precision(given, "auto", cuda, bf16) == str(given)


def test_trainer_resolves_auto_to_full_precision_on_this_cpu_and_keeps_an_override():
    auto = DeepconvTrainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    assert auto.precision == "32-true" and "auto" in auto.precision_note
    given = DeepconvTrainer(accelerator="cpu", precision="bf16-mixed", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False)
    assert given.precision == "bf16-mixed" and given.precision_note == ""


def test_print_config_shows_the_precision_setting(capsys):
    with pytest.raises(SystemExit) as stop:
        deepconv(["train", "-c", str(QUICKSTART_A), "--print_config"])
    assert stop.value.code in (0, None)
    assert "  precision: auto\n" in capsys.readouterr().out


def test_imagenet_recipes_carry_the_speed_settings():
    """The shipped ImageNet recipes show precision (and the classifiers NHWC and compile) in the file itself."""
    recipes = sorted((QUICKSTART_A.parents[1] / "imagenet").glob("*.yaml"))
    trained = [yaml.safe_load(p.read_text()) for p in recipes]
    trained = [r for r in trained if "trainer" in r]
    assert len(trained) >= 15
    for recipe in trained:
        assert recipe["trainer"]["precision"] == "auto"
        if "regression" not in recipe["model"]:  # the localisers' module has no NHWC/compile options
            assert "channels_last" in recipe["model"] and "compile" in recipe["model"]


@pytest.mark.parametrize(("name", "peak"), [
    ("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H100 NVL", 835.0),
    ("NVIDIA A100-SXM4-80GB", 312.0),
    ("NVIDIA A10", 125.0), ("NVIDIA L40S", 362.0), ("Tesla V100-SXM2-16GB", None), ("", None), (None, None),
])
def test_gpu_peaks_come_from_the_table_by_name(name, peak):
    assert peak_tflops(name) == peak


def test_mfu_is_three_forward_passes_per_image_over_the_peak():
    # VGG-16: 30.9 GFLOPs forward; 5,000 img/s on one H100 -> 3 x 30.9e9 x 5000 / 989.4e12 = 46.9%
    assert mfu(5000, 30.94e9, 989.4) == pytest.approx(0.469, abs=0.001)
    assert mfu(5000, 30.94e9, None) is None


def _epoch_rows(run_dir) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("train/images_per_second")]


def test_training_logs_images_per_second_and_data_wait_every_epoch(tmp_path, digits_dir, capsys):
    """A short CPU run: one row per epoch with a positive, finite images/s and a data-wait share in [0, 1]; no MFU
    on a CPU; the precision picked by `auto` is said once."""
    run = tmp_path / "run"
    code = deepconv(["train", "-c", str(QUICKSTART_A), f"--data.data_dir={digits_dir}",
                     f"--trainer.default_root_dir={run}", "--trainer.max_epochs=2", "--trainer.limit_train_batches=5",
                     "--trainer.limit_val_batches=2", "--trainer.enable_progress_bar=false", "--data.num_workers=0"])
    assert code == 0
    rows = _epoch_rows(run)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for r in rows:
        rate, wait = float(r["train/images_per_second"]), float(r["train/data_wait_fraction"])
        assert math.isfinite(rate) and rate > 0
        assert 0.0 <= wait <= 1.0
        assert "train/mfu" not in r or r["train/mfu"] == ""
    out = capsys.readouterr().out
    assert out.count("precision 32-true (auto:") == 1


class _SlowImages(Dataset):
    """Tiny random crops that take `delay` seconds each to load: a loader slower than the step it feeds."""

    def __init__(self, n: int, delay: float) -> None:
        self.n, self.delay = n, delay

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        time.sleep(self.delay)
        return torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8), i % 10


def test_a_slow_loader_shows_as_data_wait_and_bounds_images_per_second(tmp_path):
    """4 batches of 4 images, each image loaded in 0.1 s: the epoch lasts >= 1.6 s, so images/s <= 16/1.6 = 10,
    and most of it is waiting for the loader (a narrow net's step on 4 images takes milliseconds)."""
    monitor = EpochThroughput()
    logged: dict[str, float] = {}
    module = _NoScheduler("A", 10, width=0.125, crop_size=32, channels_last=False, compile=False)
    module.log = lambda name, value, **kw: logged.__setitem__(name, float(torch.as_tensor(value).detach()))
    loader = DataLoader(_SlowImages(16, 0.1), batch_size=4)
    trainer = DeepconvTrainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                              enable_progress_bar=False, enable_model_summary=False, callbacks=[monitor])
    trainer.fit(module, train_dataloaders=loader)
    assert 0 < logged["train/images_per_second"] <= 10.0
    assert 0.5 < logged["train/data_wait_fraction"] <= 1.0
    assert logged["img/s"] == logged["train/images_per_second"]
    assert "train/mfu" not in logged


def test_the_compile_pause_is_reported_once_in_one_line(capsys):
    """A compiled module (marked so here: compiling on a CPU takes minutes) says how long its first step took,
    once, however many steps follow."""
    module = _NoScheduler("A", 10, width=0.125, crop_size=32, channels_last=False, compile=False)
    module.compiled = True
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8, generator=g),
                                          torch.randint(0, 10, (24,), generator=g))
    trainer = DeepconvTrainer(accelerator="cpu", max_steps=6, logger=False, enable_checkpointing=False,
                              enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=4))
    lines = [line for line in capsys.readouterr().out.splitlines() if "torch.compile" in line]
    assert len(lines) == 1 and "the first training step took" in lines[0]
    assert float(lines[0].split("took ")[1].split(" s")[0]) >= 0
