"""Shared fixtures: the digits ImageFolder tree and one trained narrow VGG-A checkpoint, each built once."""

import shutil
from pathlib import Path

import pytest
import torch
from helpers import QUICKSTART_A, digits_subset

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data.digits import write_digits
from deepconv_cli.models.checkpoint import ModelMeta, save_model_checkpoint
from deepconv_cli.models.vgg import VGG


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    """The built-in digits written as train/ and val/ ImageFolder trees (1,438 + 359 PNGs)."""
    root = tmp_path_factory.mktemp("digits")
    write_digits(root)
    return root


@pytest.fixture(scope="session")
def trained_ckpt(digits_dir, tmp_path_factory) -> Path:
    """best.ckpt of the quickstart narrow VGG-A recipe, trained as the recipe says
    (30 epochs, about 40 s on 2 idle CPU cores)."""
    run_dir = tmp_path_factory.mktemp("run_a")
    code = deepconv(
        ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={digits_dir}", f"--trainer.default_root_dir={run_dir}",
         "--trainer.enable_progress_bar=false", "--data.num_workers=0"]
    )
    assert code == 0
    return run_dir / "best.ckpt"


@pytest.fixture(scope="session")
def digits_0_4_and_5_9(digits_dir, tmp_path_factory) -> tuple[Path, Path]:
    """Digits 0-4 as a train/ + val/ tree (to train a net on), digits 5-9 of both splits as one class tree."""
    root = tmp_path_factory.mktemp("digits_split")
    for split in ("train", "val"):
        for c in "01234":
            shutil.copytree(digits_dir / split / c, root / "seen" / split / c)
        for c in "56789":
            shutil.copytree(digits_dir / split / c, root / "unseen" / c, dirs_exist_ok=True)
    return root / "seen", root / "unseen"


@pytest.fixture(scope="session")
def ckpt_0_4(digits_0_4_and_5_9, tmp_path_factory) -> Path:
    """A narrow VGG-A trained on digits 0-4 only (the quickstart recipe, 6 epochs)."""
    run_dir = tmp_path_factory.mktemp("run_0_4")
    code = deepconv(
        ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={digits_0_4_and_5_9[0]}",
         f"--trainer.default_root_dir={run_dir}", "--trainer.max_epochs=6", "--trainer.enable_progress_bar=false",
         "--data.num_workers=0"]
    )
    assert code == 0
    return run_dir / "best.ckpt"


@pytest.fixture(scope="module")
def small_tree(digits_dir, tmp_path_factory) -> Path:
    """10 train + 5 val digits per class (helpers.train_args: 5 steps of 20 images an epoch); modules that need
    another size define their own."""
    return digits_subset(digits_dir, tmp_path_factory.mktemp("small"), 10, 5)


@pytest.fixture(scope="module")
def net_ckpt(tmp_path_factory) -> Path:
    """A narrow VGG-A with fixed random weights for the digits' ten classes (descriptor properties hold for any)."""
    torch.manual_seed(0)
    classes = [str(i) for i in range(10)]
    meta = ModelMeta(arch="A", num_classes=10, classes=classes, width=0.125, crop_size=32, s_min=36, s_max=36)
    path = tmp_path_factory.mktemp("net") / "a.ckpt"
    save_model_checkpoint(path, VGG("A", 10, 0.125, 32, init="glorot").eval(), meta)
    return path
