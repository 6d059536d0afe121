"""Data pipeline: scale jitter draws S in range, crops are the right size and region, statistics are exact."""

import random

import numpy as np
import pytest
import torch
from PIL import Image

from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.data.digits import load_digits
from deepconv_cli.data.stats import compute_stats, load_or_compute
from deepconv_cli.data.transforms import ScaleJitterCrop, pca_color_shift, train_transform
from deepconv_cli.errors import DeepconvError


def test_scale_jitter_draws_every_s_in_range_and_crops_the_crop_size():
    random.seed(0)
    jitter = ScaleJitterCrop(256, 512, 224)
    drawn = [jitter.params((500, 375))[0] for _ in range(3000)]
    assert min(drawn) == 256 and max(drawn) == 512
    assert len(set(drawn)) > 200  # uniform over the integers, not a few fixed values
    img = Image.new("RGB", (500, 375))
    assert all(jitter(img).size == (224, 224) for _ in range(20))
    out = train_transform(256, 512, 224)(img)
    assert out.shape == (3, 224, 224) and out.dtype == torch.uint8


def test_crop_offsets_stay_inside_the_rescaled_image():
    random.seed(1)
    jitter = ScaleJitterCrop(256, 300, 224)
    for _ in range(2000):
        s, left, top = jitter.params((500, 375))
        assert 0 <= left <= 500 * s / 375 - 224 and 0 <= top <= s - 224


def test_crop_box_resize_equals_resize_whole_then_crop():
    """Resizing only the crop's source box gives the pixels of resize-to-S followed by the crop."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:400]
    smooth = np.stack([xx * 255 / 400, yy * 255 / 300, (xx + yy) * 255 / 700], -1) + rng.normal(0, 2, (300, 400, 3))
    img = Image.fromarray(smooth.clip(0, 255).astype(np.uint8))
    jitter = ScaleJitterCrop(200, 200, 128)
    random.seed(3)
    s, left, top = jitter.params(img.size)
    random.seed(3)
    fast = np.asarray(jitter(img), dtype=np.float64)
    whole = img.resize((round(400 * s / 300), s), Image.Resampling.BILINEAR)
    slow = np.asarray(whole.crop((left, top, left + 128, top + 128)), dtype=np.float64)
    assert np.abs(fast - slow).mean() < 1.5  # grey levels out of 255


def test_stats_on_a_known_image_set(tmp_path):
    """Two flat images: mean is their average; the covariance has one direction, (1,-1,0)/sqrt2 scaled."""
    Image.new("RGB", (4, 4), (100, 50, 0)).save(tmp_path / "a.png")
    Image.new("RGB", (4, 4), (50, 100, 0)).save(tmp_path / "b.png")
    stats = compute_stats([str(tmp_path / "a.png"), str(tmp_path / "b.png")], progress=False)
    np.testing.assert_allclose(stats["mean"], [75, 75, 0], atol=1e-9)
    # each channel deviates by +-25/255 in opposite directions: eigenvalue 2 * (25/255)^2 along (1, -1, 0)/sqrt(2)
    np.testing.assert_allclose(stats["pca_eigval"], [2 * (25 / 255) ** 2, 0, 0], atol=1e-12)
    top = np.array(stats["pca_eigvec"])[:, 0]
    np.testing.assert_allclose(np.abs(top), [2**-0.5, 2**-0.5, 0], atol=1e-9)
    assert top[0] * top[1] < 0


def test_stats_on_digits_match_numpy(digits_dir):
    images, _ = load_digits()
    files = sorted(str(p) for p in (digits_dir / "train").rglob("*.png"))
    stats = compute_stats(files, max_images=0, progress=False)
    expected = np.concatenate([images[i][None] for i in range(len(images)) if i % 5 != 4]).mean()
    np.testing.assert_allclose(stats["mean"], [expected] * 3, rtol=1e-9)


def test_stats_are_cached_and_reused(tmp_path):
    Image.new("RGB", (4, 4), (10, 20, 30)).save(tmp_path / "a.png")
    cache = tmp_path / "stats.json"
    first = load_or_compute([str(tmp_path / "a.png")], cache, None, 10)
    assert cache.is_file()
    cache.write_text(cache.read_text().replace('"mean": [', '"mean": [1000, 0, 0], "old": ['))
    assert load_or_compute([str(tmp_path / "a.png")], cache, None, 10)["mean"] == [1000, 0, 0]
    assert first["mean"] == pytest.approx([10, 20, 30])


def test_pca_shift_adds_one_colour_offset_per_image():
    torch.manual_seed(0)
    eigval = torch.tensor([0.2, 0.02, 0.002])
    eigvec = torch.linalg.qr(torch.randn(3, 3))[0]
    x = torch.full((500, 3, 4, 4), 100.0)
    shifted = pca_color_shift(x, eigval, eigvec, 0.1)
    offset = (shifted - x)[:, :, 0, 0]
    assert torch.equal((shifted - x).amax((2, 3)), (shifted - x).amin((2, 3)))  # constant within an image
    # back in eigen-coordinates the offsets are alpha_i * lambda_i * 255 with alpha ~ N(0, 0.1)
    coeff = offset @ eigvec / 255
    torch.testing.assert_close(coeff.std(0) / eigval, torch.full((3,), 0.1), atol=0.015, rtol=0)


def test_datamodule_rejects_missing_folder_and_class_mismatch(tmp_path, digits_dir):
    with pytest.raises(DeepconvError, match="not found"):
        ImageFolderData(str(tmp_path / "nope"))
    for split, classes in (("train", "abc"), ("val", "ab")):
        for c in classes:
            (tmp_path / split / c).mkdir(parents=True)
    with pytest.raises(DeepconvError, match="different classes"):
        ImageFolderData(str(tmp_path), s_min=36, s_max=36, crop_size=32)
    data = ImageFolderData(str(digits_dir), s_min=36, s_max=48, crop_size=32)
    assert data.num_classes == 10 and data.test_scale == 42  # Q = (Smin + Smax) / 2 for jittered S


def test_stats_name_an_unreadable_image(tmp_path):
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(DeepconvError, match="cannot read image .*bad.png"):
        compute_stats([str(tmp_path / "bad.png")], progress=False)


def test_the_time_to_the_data_is_said_once_with_the_image_counts(digits_dir, capsys):
    dm = ImageFolderData(str(digits_dir), s_min=36, s_max=36, crop_size=32, batch_size=32, num_workers=0)
    dm.prepare_data()
    dm.setup("fit")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("data: ")]
    assert len(lines) == 1, lines
    seconds = float(lines[0].split(" ready in ")[1].split(" s ")[0])
    assert lines[0].startswith("data: 1,438 training + 359 validation images ready in ") and 0 <= seconds < 600


def test_stats_over_worker_processes_equal_the_in_process_sums_bit_for_bit(digits_dir):
    files = sorted(str(p) for p in (digits_dir / "train").rglob("*.png"))
    assert len(files) >= 1000  # enough for the pool to be used (stats.PARALLEL_MIN)
    assert compute_stats(files, progress=False, workers=2) == compute_stats(files, progress=False, workers=0)
