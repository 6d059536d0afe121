"""Training end to end: a narrow VGG-A learns the digits, and its checkpoint carries everything later commands need."""

import csv

import torch

from deepconv_cli.data.folder import ImageTree
from deepconv_cli.data.transforms import val_transform
from deepconv_cli.models.checkpoint import load_model, read_checkpoint


def test_narrow_vgg_a_learns_the_digits(trained_ckpt):
    """Quickstart recipe (30 epochs): val top-1 error far below chance (90%) and under the 5% target."""
    with open(trained_ckpt.parent / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    errors = [float(r["val/top1_error"]) for r in rows if r.get("val/top1_error")]
    assert errors[0] > 30  # it started near chance ...
    assert min(errors) <= 5.0  # ... and learned
    assert (trained_ckpt.parent / "curves.png").stat().st_size > 10_000
    assert (trained_ckpt.parent / "config.yaml").is_file()
    assert (trained_ckpt.parent / "last.ckpt").is_file()


def test_checkpoint_alone_reproduces_the_validation_error(trained_ckpt, digits_dir):
    """Rebuild from the checkpoint's metadata only (no config): same preprocessing, same error as logged."""
    model, meta = load_model(trained_ckpt)
    assert meta.arch == "A" and meta.classes == [str(i) for i in range(10)]
    assert meta.s_min == meta.s_max == 36 and meta.crop_size == 32
    assert 60 < meta.mean[0] < 90 and len(meta.pca_eigval) == 3
    data = ImageTree(digits_dir / "val", val_transform(36, 32))
    x = torch.stack([data[i][0] for i in range(len(data))]).float()
    y = torch.tensor(data.targets)
    with torch.no_grad():
        error = 100 * (model(x).argmax(1) != y).float().mean().item()
    logged = float(read_checkpoint(trained_ckpt)["callbacks"][next(
        k for k in read_checkpoint(trained_ckpt)["callbacks"] if k.startswith("ModelCheckpoint"))]["best_model_score"])
    assert abs(error - logged) < 1e-3
    assert error <= 5.0
