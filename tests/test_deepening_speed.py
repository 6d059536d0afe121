"""The paper's reason for deepening (§3.1): a deep net from plain normal init learns far slower than from net A."""

import csv
from pathlib import Path

from deepconv_cli.__main__ import main as deepconv

QUICKSTART_A = Path(__file__).resolve().parents[1] / "recipes" / "quickstart" / "vgg_a.yaml"


def val_errors(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [float(r["val/top1_error"]) for r in csv.DictReader(f) if r.get("val/top1_error")]


def test_narrow_e_learns_much_faster_when_initialised_from_trained_a(trained_ckpt, digits_dir, tmp_path):
    """Narrow E (width 1/8), zero-mean normal init std 0.05 for every random layer, 6 epochs, fixed seed.

    Measured (seed 0, 2 CPU cores): from scratch the error stays at chance (92-94 %) all six epochs; initialised
    from A (first four convs + three FCs) it falls to 36-50 %. The bounds leave a wide margin on both sides.
    """
    common = ["-c", str(QUICKSTART_A), f"--data.data_dir={digits_dir}", "--data.num_workers=0",
              "--trainer.enable_progress_bar=false", "--trainer.max_epochs=6", "--model.arch=E",
              "--model.init=normal", "--model.init_std=0.05"]
    assert deepconv(["train", *common, f"--trainer.default_root_dir={tmp_path / 'scratch'}"]) == 0
    assert deepconv(["fine-tune", *common, f"--trainer.default_root_dir={tmp_path / 'deepened'}",
                     "--init-from", str(trained_ckpt)]) == 0
    scratch, deepened = val_errors(tmp_path / "scratch"), val_errors(tmp_path / "deepened")
    assert len(scratch) == len(deepened) == 6
    assert min(scratch) > 85.0  # plain normal init: no learning in 6 epochs
    assert min(deepened) < 65.0  # from A: well on its way
    assert min(scratch) - min(deepened) > 25.0
