"""The paper's reason for deepening (§3.1): a deep net from plain normal init learns far slower than from net A."""

import csv
from pathlib import Path

import pytest
from helpers import QUICKSTART_A

from deepconv_cli.__main__ import main as deepconv

pytestmark = pytest.mark.slow  # 8 epochs of narrow E, twice (~3.5 min on 2 idle cores)
EPOCHS = 8


def val_errors(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [float(r["val/top1_error"]) for r in csv.DictReader(f) if r.get("val/top1_error")]


def test_narrow_e_learns_much_faster_when_initialised_from_trained_a(trained_ckpt, digits_dir, tmp_path):
    """Narrow E (width 1/8), zero-mean normal init std 0.05 for every random layer, 8 epochs, fixed seed.

    Measured at 6 epochs (2 CPU cores): from scratch the error stays at chance (88-94 %) every epoch; initialised
    from A (first four convs + three FCs) its best epoch reached 36 %, 53 % and 27 % with seeds 0, 1, 2 on this
    machine, but 76 % on the CI machine (other CPU kernels, same seed): the path is chaotic at this width. The test
    runs 8 epochs for more margin (measured here: passes, 3 min 22 s on a busy machine) and asks only what
    separates the two: scratch never leaves chance, deepened E gets clearly below it (359 images: 80 % error is
    twice chance's hits) and ends at least 10 points under scratch.
    """
    common = ["-c", str(QUICKSTART_A), f"--data.data_dir={digits_dir}", "--data.num_workers=0",
              "--trainer.enable_progress_bar=false", f"--trainer.max_epochs={EPOCHS}", "--model.arch=E",
              "--model.init=normal", "--model.init_std=0.05"]
    assert deepconv(["train", *common, f"--trainer.default_root_dir={tmp_path / 'scratch'}"]) == 0
    assert deepconv(["fine-tune", *common, f"--trainer.default_root_dir={tmp_path / 'deepened'}",
                     "--init-from", str(trained_ckpt)]) == 0
    scratch, deepened = val_errors(tmp_path / "scratch"), val_errors(tmp_path / "deepened")
    assert len(scratch) == len(deepened) == EPOCHS
    assert min(scratch) > 85.0  # plain normal init: no learning
    assert min(deepened) < 80.0  # from A: learning
    assert sum(scratch[-3:]) / 3 - sum(deepened[-3:]) / 3 > 10.0
