"""One image reader: the same file gives the same pixels in training, evaluation, prediction and statistics;
symlink loops do not multiply the data; odd files (looping or dangling links, decompression bombs) are one
line, never a traceback; the statistics cache notices changed images."""

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.data.folder import ImageTree, collect_images
from deepconv_cli.data.images import open_lazily, open_rgb
from deepconv_cli.data.scan import scan_images
from deepconv_cli.data.transforms import val_transform
from deepconv_cli.evaluation.dense import rescale_shorter, to_uint8_tensor
from deepconv_cli.evaluation.runner import RescaledImages
from deepconv_cli.models.checkpoint import ModelMeta, save_model_checkpoint

W, H = 96, 80  # upright size of every test picture; the shorter side (80) is >= the loaders' 64-pixel snap


def upright() -> np.ndarray:
    """A picture whose orientation is obvious: a dark top-left quadrant on a gradient."""
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([x * 255 // W, y * 255 // H, (x + y) * 255 // (W + H)], -1).astype(np.uint8)
    rgb[: H // 2, : W // 2] = 10
    return rgb


def write_odd_images(folder: Path) -> dict[str, np.ndarray]:
    """An EXIF-rotated JPEG, an RGBA PNG and a 16-bit PNG; returns the RGB pixels each should decode to."""
    folder.mkdir(parents=True, exist_ok=True)
    pic = upright()
    # stored rotated 90 degrees; EXIF orientation 6 says "rotate 90 clockwise to view"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(pic, 1)).save(folder / "exif.jpg", quality=100, exif=exif)
    alpha = np.full((H, W), 255, np.uint8)
    alpha[:, W // 2:] = 0  # right half fully transparent -> white
    Image.fromarray(np.dstack([pic, alpha]), "RGBA").save(folder / "rgba.png")
    grey16 = (np.arange(W)[None, :].repeat(H, 0) * 2 + 40).astype(np.uint16) * 257  # 8-bit value v as v * 257
    Image.fromarray(grey16).save(folder / "deep.png")
    white_right = pic.copy()
    white_right[:, W // 2:] = 255
    grey8 = (grey16 // 257).astype(np.uint8)
    return {"exif.jpg": None, "rgba.png": white_right, "deep.png": np.dstack([grey8] * 3)}


@pytest.fixture
def odd_val(tmp_path) -> Path:
    """val/odd/{exif.jpg, rgba.png, deep.png} and val/plain/ with one ordinary picture."""
    root = tmp_path / "val"
    write_odd_images(root / "odd")
    (root / "plain").mkdir()
    Image.fromarray(upright()).save(root / "plain" / "p.png")
    return root


def test_the_same_file_gives_the_same_tensor_in_training_evaluation_and_prediction(odd_val):
    expected = write_odd_images(odd_val / "odd")
    tree = ImageTree(odd_val)
    training = val_transform(H, H)  # the training loader's crop without augmentation: shorter side H, centre H x H
    evaluation = RescaledImages(tree, list(range(len(tree))), [H])
    for i, (path, _) in enumerate(tree.samples):
        if "plain" in path:
            continue
        train_x = training(open_lazily(path))
        eval_x = evaluation[i][2][H]
        predict_x = to_uint8_tensor(rescale_shorter(open_rgb(Path(path)), H))  # what `predict` feeds the model
        assert eval_x.shape == predict_x.shape == (3, H, W), path  # upright: EXIF rotation applied
        left = (W - H) // 2
        assert torch.equal(train_x, eval_x[:, :, left:left + H]), path
        assert torch.equal(eval_x, predict_x), path
        want = expected[os.path.basename(path)]
        if want is not None:  # lossless files: the exact pixels (transparency on white, 16-bit scaled)
            assert np.array_equal(eval_x.permute(1, 2, 0).numpy(), want), path
        else:  # the JPEG: upright, dark quadrant top-left
            img = eval_x.permute(1, 2, 0).numpy().astype(int)
            assert img[: H // 2 - 4, : W // 2 - 4].mean() < 30 and img[H // 2 + 4:, W // 2 + 4:].mean() > 100


def test_statistics_of_a_16_bit_image_are_scaled_not_clipped(tmp_path, capsys):
    train = tmp_path / "data" / "train" / "a"
    train.mkdir(parents=True)
    Image.fromarray(np.full((40, 50), 100 * 257, np.uint16)).save(train / "deep.png")  # 8-bit value 100
    assert deepconv(["stats", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "100.00" in out and "255.00" not in out


def test_statistics_cache_notices_overwritten_images(tmp_path, capsys):
    train = tmp_path / "data" / "train" / "a"
    train.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((20, 20, 3), 40, np.uint8)).save(train / f"{i}.png")
    assert deepconv(["stats", str(tmp_path / "data")]) == 0
    assert "40.00" in capsys.readouterr().out
    for i in range(3):  # same names, same count: only the pixels change
        Image.fromarray(np.full((20, 20, 3), 255, np.uint8)).save(train / f"{i}.png")
    assert deepconv(["stats", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "255.00" in out and "40.00" not in out


def small_copy(digits_dir: Path, root: Path, per_class: int = 4) -> Path:
    for split in ("train", "val"):
        for c in range(10):
            (root / split / str(c)).mkdir(parents=True)
            for f in sorted((digits_dir / split / str(c)).glob("*.png"))[:per_class]:
                (root / split / str(c) / f.name).write_bytes(f.read_bytes())
    return root


def test_a_directory_symlink_loop_does_not_multiply_the_data(digits_dir, tmp_path, capsys):
    root = small_copy(digits_dir, tmp_path / "d")
    os.symlink(".", root / "val" / "3" / "loop")
    os.symlink("..", root / "train" / "5" / "up")
    assert len(ImageTree(root / "val")) == 40
    assert len(ImageTree(root / "train")) == 40
    assert len(collect_images([str(root / "val")])) == 40
    assert "skipped 1 symlinked folder" in capsys.readouterr().err
    assert deepconv(["stats", str(root), "--max_images", "0"]) == 0
    assert "40 images" in capsys.readouterr().out


def test_a_linked_file_is_followed_and_a_looping_file_link_is_a_bad_image(digits_dir, tmp_path, capsys):
    root = small_copy(digits_dir, tmp_path / "d")
    real = min((root / "train" / "1").glob("*.png"))
    os.symlink(real, root / "train" / "2" / "linked.png")
    os.symlink("self.png", root / "train" / "2" / "self.png")  # ELOOP
    good, bad = scan_images([p for p, _ in ImageTree(root / "train").samples], progress=False)
    assert len(good) == 41 and [os.path.basename(b.path) for b in bad] == ["self.png"]
    assert "symlink loop" in bad[0].reason
    data = ImageFolderData(str(root), s_min=36, s_max=36, crop_size=32, batch_size=8, num_workers=0,
                           skip_bad_images=True)
    data.setup("fit")
    assert len(data.train_set) == 41
    assert "skipping 1 unreadable image" in capsys.readouterr().out


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims width x height pixels (a decompression bomb to any reader that believes it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    """An untrained narrow VGG-A checkpoint for the 10 digit classes (no training needed to read images)."""
    meta = ModelMeta("A", 10, [str(c) for c in range(10)], width=0.125, crop_size=32, s_min=36, s_max=36)
    path = tmp_path_factory.mktemp("tiny") / "tiny.ckpt"
    save_model_checkpoint(path, meta.build(), meta)
    return path


def evaluate(ckpt: Path, val: Path, *extra: str) -> list[str]:
    return ["evaluate", "--ckpt", str(ckpt), "--data", str(val), "--scales", "36", "--num-workers", "0",
            "--device", "cpu", *extra]


def test_huge_images_are_one_line_in_stats_and_evaluate(digits_dir, tiny_ckpt, tmp_path, capsys):
    root = small_copy(digits_dir, tmp_path / "d", per_class=2)
    png_header_only(root / "train" / "0" / "huge.png", 20000, 20000)
    png_header_only(root / "val" / "0" / "huge.png", 20000, 20000)
    assert deepconv(["stats", str(root), "--max_images", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "huge.png" in err[0] and "too large" in err[0]
    assert deepconv(evaluate(tiny_ckpt, root / "val")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "huge.png" in err[0] and "too large" in err[0]
    assert deepconv(evaluate(tiny_ckpt, root / "val", "--skip-bad-images")) == 0
    assert "skipping 1 unreadable" in capsys.readouterr().err


def test_a_dangling_symlink_under_val_is_skipped_on_request(digits_dir, tiny_ckpt, tmp_path, capsys):
    root = small_copy(digits_dir, tmp_path / "d", per_class=2)
    os.symlink(tmp_path / "gone.png", root / "val" / "4" / "gone.png")
    assert deepconv(evaluate(tiny_ckpt, root / "val", "--skip-bad-images", "--json", str(tmp_path / "r.json"))) == 0
    assert "skipping 1 unreadable" in capsys.readouterr().err
    assert '"images": 20' in (tmp_path / "r.json").read_text()
    assert deepconv(evaluate(tiny_ckpt, root / "val")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dangling symlink" in err[0]


def test_a_large_exif_rotated_jpeg_trains_upright_at_reduced_decoding_size(tmp_path):
    pic = np.kron(upright(), np.ones((4, 4, 1), np.uint8))  # 384 x 320 upright; S = 80 decodes it at 1/4 size
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(pic, 1)).save(tmp_path / "big.jpg", quality=95, exif=exif)
    train_x = val_transform(H, H)(open_lazily(tmp_path / "big.jpg")).float()
    eval_x = to_uint8_tensor(rescale_shorter(open_rgb(tmp_path / "big.jpg"), H)).float()
    left = (W - H) // 2
    assert (train_x - eval_x[:, :, left:left + H]).abs().mean() < 4  # the same picture, upright in both
