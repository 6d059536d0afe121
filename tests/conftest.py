"""Shared fixtures: the digits ImageFolder tree and one trained narrow VGG-A checkpoint, each built once."""

from pathlib import Path

import pytest

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data.digits import write_digits

REPO = Path(__file__).resolve().parents[1]
QUICKSTART_A = REPO / "recipes" / "quickstart" / "vgg_a.yaml"


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    """The built-in digits written as train/ and val/ ImageFolder trees (1,438 + 359 PNGs)."""
    root = tmp_path_factory.mktemp("digits")
    write_digits(root)
    return root


@pytest.fixture(scope="session")
def trained_ckpt(digits_dir, tmp_path_factory) -> Path:
    """best.ckpt of the quickstart narrow VGG-A recipe, trained as the recipe says (30 epochs, about 40 s on 2 idle CPU cores)."""
    run_dir = tmp_path_factory.mktemp("run_a")
    code = deepconv(
        ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={digits_dir}", f"--trainer.default_root_dir={run_dir}",
         "--trainer.enable_progress_bar=false", "--data.num_workers=0"]
    )
    assert code == 0
    return run_dir / "best.ckpt"
