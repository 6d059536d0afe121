"""`data.decode_on: cuda`: the device path's crops against the CPU path's for the same random draws (run here
with device="cpu"), mixed batches, the CPU fallback, and a training that goes through the deferred batches."""

import csv
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import QUICKSTART_A

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.benchmarks.loader import natural_image
from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.data.device_decode import DeferredBatch, DeferredTrainCrop, JpegCrop, collate, resize_boxes
from deepconv_cli.data.images import open_lazily
from deepconv_cli.data.transforms import train_transform


def _jpeg(tmp_path: Path, width: int, height: int, seed: int = 0) -> Path:
    path = tmp_path / f"{width}x{height}_{seed}.jpg"
    natural_image(np.random.default_rng(seed), width, height).save(path, quality=90)
    return path


def _both(path: Path, s_min: int, s_max: int, crop: int, seed: int) -> tuple[torch.Tensor, object, torch.Tensor]:
    """The CPU path's crop, the device transform's output and its crop made with device="cpu", same seeds."""
    random.seed(seed)
    torch.manual_seed(seed)
    cpu = train_transform(s_min, s_max, crop)(open_lazily(path))
    random.seed(seed)
    torch.manual_seed(seed)
    deferred = DeferredTrainCrop(s_min, s_max, crop)(open_lazily(path))
    made, _ = collate([(deferred, 0)]).to("cpu").make()
    return cpu, deferred, made[0]


@pytest.mark.parametrize("seed", range(6))
def test_full_size_decodes_match_the_cpu_path_within_one_grey_level(tmp_path, seed):
    """500x375 at S in [256, 512]: the CPU path decodes at full size too; the crops (same S, corner, flip) differ
    by at most 1 grey level (the device path's float resize vs torch's uint8 kernel)."""
    cpu, deferred, made = _both(_jpeg(tmp_path, 500, 375), 256, 512, 224, seed)
    assert isinstance(deferred, JpegCrop)
    diff = (cpu.int() - made.int()).abs()
    assert diff.max() <= 1 and diff.float().mean() < 0.5


@pytest.mark.parametrize("seed", range(4))
def test_dct_reduced_decodes_stay_within_the_documented_tolerance(tmp_path, seed):
    """900x700 at S in [256, 300]: the CPU path decodes at 1/2 size in the DCT, the device at full size and the
    resize shrinks; same crop, a few grey levels apart on average (documented in data/device_decode.py)."""
    cpu, _, made = _both(_jpeg(tmp_path, 900, 700), 256, 300, 224, seed)
    diff = (cpu.int() - made.int()).abs().float()
    assert diff.mean() < 4
    # a wrong corner, scale or flip is tens of grey levels away on this texture: check that the test can tell
    assert (cpu.int() - made.flip(-1).int()).abs().float().mean() > 2 * diff.mean()


def test_the_batched_resize_is_torchs_antialiased_resize_with_the_flip(tmp_path):
    """One matrix product per group of boxes gives what F.interpolate(antialias=True) gives box by box, shrinking
    and enlarging, mirrored where asked."""
    g = torch.Generator().manual_seed(0)
    sides = [450, 20, 224, 164, 37, 328, 225, 64, 100, 31]
    boxes = [torch.randint(0, 256, (3, s, s), dtype=torch.uint8, generator=g) for s in sides]
    flips = [i % 3 == 0 for i in range(len(sides))]
    for crop in (224, 32):
        made = resize_boxes(boxes, crop, flips)
        for box, flip, out in zip(boxes, flips, made, strict=True):
            ref = F.interpolate(box[None].float(), size=(crop, crop), mode="bilinear", antialias=True)[0]
            assert (out - (ref.flip(-1) if flip else ref)).abs().max() < 0.02


def test_a_batch_of_mixed_sizes_gets_the_cpu_paths_scales_positions_and_flips(tmp_path):
    """Twelve images of six shapes through one deferred batch, drawn from the same seed as the CPU path: each crop
    is the CPU path's crop (same S, corner and flip) within 1 grey level; the draws cover scales, both flips and
    more than one corner, so a batch-order mix-up or a lost flip would show."""
    shapes = [(500, 375), (375, 500), (640, 480), (333, 500), (500, 333), (420, 420)]
    paths = [_jpeg(tmp_path, w, h, seed=i) for i, (w, h) in enumerate(shapes * 2)]
    random.seed(7)
    torch.manual_seed(7)
    cpu = [train_transform(256, 384, 224)(open_lazily(p)) for p in paths]
    random.seed(7)
    torch.manual_seed(7)
    transform = DeferredTrainCrop(256, 384, 224)
    batch = collate([(transform(open_lazily(p)), i) for i, p in enumerate(paths)])
    made, labels = batch.to("cpu").make()
    assert labels.tolist() == list(range(12)) and len(batch.jpegs) == 12
    for a, b in zip(cpu, made, strict=True):
        assert (a.int() - b.int()).abs().max() <= 1
    scales, lefts, flips = zip(*[(s, left, f) for s, left, _, f in batch.params], strict=True)
    assert len(set(scales)) > 6 and len(set(lefts)) > 6 and set(flips) == {True, False}


def test_non_jpeg_files_take_the_cpu_path_with_the_same_pixels(tmp_path, digits_dir):
    png = next((digits_dir / "train" / "3").glob("*.png"))
    for seed in range(3):
        random.seed(seed)
        torch.manual_seed(seed)
        cpu = train_transform(36, 40, 32)(open_lazily(png))
        random.seed(seed)
        torch.manual_seed(seed)
        deferred = DeferredTrainCrop(36, 40, 32)(open_lazily(png))
        assert isinstance(deferred, torch.Tensor) and torch.equal(cpu, deferred)


def test_a_mixed_batch_keeps_order_and_labels(tmp_path, digits_dir):
    png = next((digits_dir / "train" / "3").glob("*.png"))
    jpeg = _jpeg(tmp_path, 640, 480)
    transform = DeferredTrainCrop(36, 40, 32)
    samples = [(transform(open_lazily(p)), label) for p, label in ((jpeg, 5), (png, 3), (jpeg, 7))]
    batch = collate(samples)
    assert isinstance(batch, DeferredBatch) and batch.index.tolist() == [0, 2] and len(batch.jpegs) == 2
    crops, labels = batch.to("cpu").make()
    assert labels.tolist() == [5, 3, 7] and crops.shape == (3, 3, 32, 32) and crops.dtype == torch.uint8
    assert torch.equal(crops[1], samples[1][0])  # the PNG's finished crop, untouched
    assert crops[0].float().std() > 5 and crops[2].float().std() > 5  # JPEG crops were made, not left at zero


def test_bf16_input_conversion_leaves_the_crop_parameters_exact(tmp_path):
    """Lightning's bf16-true plugin casts every float tensor of a batch, dataclass fields included; bf16 holds
    integers exactly only up to 256, so S = 377 as a tensor would become 376. The parameters must come through."""
    from lightning.pytorch.plugins.precision import HalfPrecision

    jpeg = _jpeg(tmp_path, 640, 480)
    random.seed(3)
    batch = collate([(DeferredTrainCrop(256, 512, 224)(open_lazily(jpeg)), 0)])
    before = [tuple(p) for p in batch.params]
    as_bf16 = torch.tensor(before[0][:3]).bfloat16().double().tolist()
    assert as_bf16 != list(before[0][:3])  # these draws are ones bf16 would change
    assert HalfPrecision("bf16-true").convert_input(batch).params == before


def _jpeg_tree(tmp_path: Path, digits_dir: Path) -> Path:
    """The digits as JPEGs (40 per class in train, 10 in val), 96x96: boxes of >= 64 pixels, which the device path
    takes (smaller ones take the CPU path)."""
    from PIL import Image

    root = tmp_path / "jpegs"
    for split, count in (("train", 40), ("val", 10)):
        for c in sorted(p.name for p in (digits_dir / split).iterdir() if p.is_dir()):
            (root / split / c).mkdir(parents=True)
            for i, png in enumerate(sorted((digits_dir / split / c).iterdir())[:count]):
                Image.open(png).convert("RGB").resize((96, 96)).save(root / split / c / f"{i}.jpg", quality=95)
    return root


@pytest.mark.slow
def test_training_through_deferred_batches_learns(tmp_path, digits_dir, monkeypatch):
    """The device path forced on a CPU (device="cpu" decoding): workers send bytes and parameters, the module
    makes the crops in on_after_batch_transfer, and the narrow net's training loss falls."""
    monkeypatch.setattr(ImageFolderData, "decodes_on_device", lambda self: True)
    made, make = [], DeferredBatch.make
    monkeypatch.setattr(DeferredBatch, "make", lambda self: made.append(len(self.jpegs)) or make(self))
    root, run = _jpeg_tree(tmp_path, digits_dir), tmp_path / "run"
    code = deepconv(["train", "-c", str(QUICKSTART_A), f"--data.data_dir={root}", "--data.decode_on=cuda",
                     "--data.s_min=36", "--data.s_max=40", f"--trainer.default_root_dir={run}",
                     "--trainer.max_epochs=4", "--trainer.enable_progress_bar=false", "--data.num_workers=1"])
    assert code == 0
    with open(run / "metrics.csv", newline="") as f:
        losses = [float(r["train/loss_epoch"]) for r in csv.DictReader(f) if r.get("train/loss_epoch")]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert len(made) == 4 * (400 // 32) and all(n == 32 for n in made)  # every training batch, all JPEGs on "device"
    shutil.rmtree(root)


def test_without_cuda_decode_on_cuda_falls_back_in_one_line(tmp_path, digits_dir, capsys):
    run = tmp_path / "run"
    code = deepconv(["train", "-c", str(QUICKSTART_A), f"--data.data_dir={digits_dir}", "--data.decode_on=cuda",
                     f"--trainer.default_root_dir={run}", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
                     "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false", "--data.num_workers=0"])
    assert code == 0
    assert capsys.readouterr().out.count("data.decode_on cuda: training does not run on a CUDA device") == 1


def test_an_unknown_decode_on_value_is_one_usage_line(tmp_path, digits_dir, capsys):
    code = deepconv(["train", "-c", str(QUICKSTART_A), f"--data.data_dir={digits_dir}", "--data.decode_on=gpu",
                     f"--trainer.default_root_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "decode_on" in err[0] and "Traceback" not in err[0]
