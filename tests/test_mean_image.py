"""AlexNet's per-pixel mean image (`--data.mean_image true`): computed from the training set, carried by the
checkpoint, subtracted identically by training, evaluation and the ONNX export; older checkpoints still load."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_tree
from PIL import Image

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data.mean_image import MEAN_IMAGE_FILE, central_square, compute_mean_image
from deepconv_cli.models.checkpoint import load_model
from deepconv_cli.models.layers import InputNorm

WIDTH, CROP, S = 0.125, 67, 76


def test_mean_image_is_the_average_of_the_central_squares(tmp_path):
    """Two images of different shapes: the mean image is the pixel-wise average of their central S x S squares."""
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(40, 30), (30, 50)]):  # (w, h): landscape and portrait
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(paths[-1])
    mean = compute_mean_image(paths, 20, progress=False)
    assert mean.shape == (3, 20, 20)
    expected = (central_square(paths[0], 20) + central_square(paths[1], 20)) / 2
    assert np.allclose(mean, expected, atol=1e-4)
    # a uniform grey image of any shape has itself as its mean image
    Image.new("RGB", (33, 21), (10, 120, 250)).save(tmp_path / "grey.png")
    grey = compute_mean_image([str(tmp_path / "grey.png")], 16, progress=False)
    assert np.allclose(grey, np.array([10, 120, 250]).reshape(3, 1, 1), atol=1e-3)


def test_input_norm_subtracts_the_mean_image_and_old_state_dicts_load():
    norm = InputNorm()
    norm.set([1.0, 2.0, 3.0])
    image = torch.arange(3 * 4 * 4, dtype=torch.float32).reshape(3, 4, 4)
    norm.set_mean_image(image)
    x = torch.rand(2, 3, 4, 4) * 255
    assert torch.equal(norm(x), x - image)  # at the mean image's own size: exactly x - mean image
    y = torch.rand(1, 3, 8, 6) * 255  # another size: the mean image resampled to it
    resampled = torch.nn.functional.interpolate(image[None], size=(8, 6), mode="bilinear", align_corners=False)
    assert torch.allclose(norm(y), y - resampled)
    # a state dict without the entry (written before the option) loads and means the mean RGB again
    state = {k: v for k, v in norm.state_dict().items() if k != "mean_image"}
    fresh = InputNorm()
    fresh.load_state_dict(state)
    assert fresh.mean_image.numel() == 0 and torch.equal(fresh(x), x - torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1))
    # and a state dict with a mean image gives it to a freshly built (mean-RGB) module
    fresh.load_state_dict(norm.state_dict())
    assert torch.equal(fresh.mean_image[0], image)


@pytest.fixture(scope="module")
def mean_image_run(tmp_path_factory) -> tuple[Path, Path]:
    root = write_tree(tmp_path_factory.mktemp("mean_image_digits"), [0, 1, 2])
    run = tmp_path_factory.mktemp("mean_image_run")
    code = deepconv(["train", "--model.arch=alexnet", f"--model.width={WIDTH}", "--model.init=glorot",
                     "--model.lr=0.005", f"--data.data_dir={root}", f"--data.s_min={S}", f"--data.s_max={S}",
                     f"--data.crop_size={CROP}", "--data.center_square=true", "--data.mean_image=true",
                     "--data.batch_size=8", "--data.num_workers=0", "--trainer.max_epochs=1",
                     "--trainer.limit_train_batches=3", "--trainer.accelerator=cpu",
                     "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={run}"])
    assert code == 0
    return root, run / "best.ckpt"


@pytest.mark.slow
def test_training_with_the_mean_image_carries_it_to_evaluation_and_onnx(mean_image_run, tmp_path):
    root, ckpt = mean_image_run
    model, meta = load_model(ckpt)
    assert meta.preprocessing == "mean_image"
    files = sorted(str(p) for p in (root / "train").rglob("*.png"))
    expected = compute_mean_image(files, S, progress=False)
    assert np.array_equal(model.normalize.mean_image[0].numpy(), expected)  # the training set's, bit for bit
    assert (root / "train" / MEAN_IMAGE_FILE.format(size=S)).is_file()  # cached next to the data
    # an S x S input equal to the mean image is all zeros once normalised
    assert torch.count_nonzero(model.normalize(torch.from_numpy(expected)[None])) == 0
    out = tmp_path / "ten_crop.json"
    assert deepconv(["evaluate", "--ckpt", str(ckpt), "--data", str(root / "val"), "--method", "10-crop",
                     "--num_workers", "0", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    rows = rows.get("results", rows) if isinstance(rows, dict) else rows
    assert 0.0 <= rows[0]["top1_error"] <= 100.0
    # ONNX (dense: any size, so the mean image is resampled inside the graph) and at the crop size: export checks
    # each against PyTorch before writing it; safetensors carries the mean image back into a network
    for extra in ([], ["--fixed_size"]):
        onnx = tmp_path / f"m{len(extra)}.onnx"
        assert deepconv(["export", "--ckpt", str(ckpt), "--format", "onnx", "--out", str(onnx), *extra]) == 0
        assert onnx.is_file()
    weights = tmp_path / "m.safetensors"
    assert deepconv(["export", "--ckpt", str(ckpt), "--format", "safetensors", "--out", str(weights)]) == 0
    from deepconv_cli.export.artefact import load_network

    again, _ = load_network(weights)
    assert torch.equal(again.normalize.mean_image, model.normalize.mean_image)


def test_a_damaged_mean_image_cache_is_recomputed(tmp_path):
    from deepconv_cli.data.mean_image import load_or_compute_mean_image

    Image.new("RGB", (30, 20), (7, 8, 9)).save(tmp_path / "a.png")
    cache = tmp_path / MEAN_IMAGE_FILE.format(size=16)
    for damage in (b"", b"PK\x03\x04 not a zip"):
        cache.write_bytes(damage)
        mean = load_or_compute_mean_image([str(tmp_path / "a.png")], 16, tmp_path, None, 10)
        assert np.allclose(mean, np.array([7, 8, 9]).reshape(3, 1, 1), atol=1e-3)
        assert cache.stat().st_size > 100  # rewritten whole
