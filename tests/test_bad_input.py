"""Bad input never reaches training half-understood: odd but valid images are used as RGB, broken files stop the
run up front (one line each) or are skipped on request, hidden folders are ignored, bad configs exit 2."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import QUICKSTART_A
from PIL import Image

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data import scan
from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.data.scan import SCAN_FILE, scan_images

BROKEN = ("truncated.jpg", "zero.jpg", "text.jpg")
ODD_BUT_GOOD = ("cmyk.jpg", "grey.jpg", "rgba.png", "png_named.JPEG")


def _rgb(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 40, 3), dtype=np.uint8))


@pytest.fixture
def odd_tree(tmp_path) -> Path:
    """train/{cat,dog,empty}, val/{cat,dog,empty}: the odd files in train/cat, hidden folders everywhere."""
    root = tmp_path / "odd"
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
            for i in range(3):
                _rgb(i + 10 * len(cls)).save(root / split / cls / f"ok{i}.jpg")
        (root / split / "empty").mkdir()
        hidden = root / split / ".ipynb_checkpoints"
        hidden.mkdir()
        _rgb(99).save(hidden / "stray.jpg")
    cat = root / "train" / "cat"
    _rgb(1).convert("CMYK").save(cat / "cmyk.jpg")
    _rgb(2).convert("L").save(cat / "grey.jpg")
    _rgb(3).convert("RGBA").save(cat / "rgba.png")
    _rgb(4).save(cat / "png_named.JPEG", format="PNG")
    _rgb(5).save(cat / "full.jpg", quality=95)
    data = (cat / "full.jpg").read_bytes()
    (cat / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (cat / "full.jpg").unlink()
    (cat / "zero.jpg").write_bytes(b"")
    (cat / "text.jpg").write_text("this is not an image\n")
    (cat / ".ipynb_checkpoints").mkdir()
    _rgb(6).save(cat / ".ipynb_checkpoints" / "ok0-checkpoint.jpg")
    return root


def train_args(data: Path, run_dir: Path) -> list[str]:
    return ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={data}", f"--trainer.default_root_dir={run_dir}",
            "--data.num_workers=0", "--trainer.max_steps=1", "--data.batch_size=4", "--trainer.num_sanity_val_steps=0",
            "--trainer.enable_progress_bar=false"]


def test_scan_finds_exactly_the_broken_files_and_caches_per_folder(odd_tree, monkeypatch):
    files = sorted(str(p) for p in (odd_tree / "train").rglob("*") if p.is_file())
    cache = [odd_tree / SCAN_FILE]
    good, bad = scan_images(files, cache, progress=False)
    assert sorted(Path(b.path).name for b in bad) == sorted(BROKEN)
    assert {Path(p).name for p in good} >= set(ODD_BUT_GOOD)
    assert scan_images(files, workers=2, progress=False) == (good, bad)  # the process pool agrees

    decoded = []
    monkeypatch.setattr(scan, "check_image", lambda path: decoded.append(path) or None)
    assert scan_images(files, cache, progress=False) == (good, bad)  # unchanged: nothing decoded again
    assert decoded == []
    _rgb(7).save(odd_tree / "train" / "dog" / "new.jpg")
    scan_images([*files, str(odd_tree / "train" / "dog" / "new.jpg")], cache, progress=False)
    assert decoded and all(Path(p).parent.name == "dog" for p in decoded)  # only the changed folder


def test_broken_images_stop_the_run_before_training_one_line_each(odd_tree, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert deepconv(train_args(odd_tree, run_dir)) == 1
    err = capsys.readouterr().err.splitlines()
    named = [line for line in err if line.startswith("bad image: ")]
    assert sorted(Path(line.split(": ")[1]).name for line in named) == sorted(BROKEN)
    assert any(line.startswith("deepconv train: error: 3 file(s)") for line in err)
    assert not (run_dir / "last.ckpt").exists() and not (run_dir / "best.ckpt").exists()


def test_skip_bad_images_trains_on_the_rest_as_rgb(odd_tree, tmp_path, capsys):
    data = ImageFolderData(str(odd_tree), s_min=36, s_max=36, crop_size=32, num_workers=0, skip_bad_images=True)
    data.setup("fit")
    names = {Path(p).name for p, _ in data.train_set.samples}
    assert names.isdisjoint(BROKEN) and names >= set(ODD_BUT_GOOD)
    assert "ok0-checkpoint.jpg" not in names and data.classes == ["cat", "dog", "empty"]
    for i, (path, _) in enumerate(data.train_set.samples):
        x, _ = data.train_set[i]
        assert x.shape == (3, 32, 32), path  # CMYK, greyscale and RGBA all arrive as RGB
    assert "skipping 3 unreadable" in capsys.readouterr().out

    run_dir = tmp_path / "run"
    assert deepconv([*train_args(odd_tree, run_dir), "--data.skip_bad_images=true"]) == 0
    assert (run_dir / "last.ckpt").is_file()


def test_train_val_class_mismatch_is_one_line_exit_2(odd_tree, tmp_path, capsys):
    shutil.rmtree(odd_tree / "val" / "dog")
    assert deepconv(train_args(odd_tree, tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("deepconv train: error: train/ and val/ have different classes (differing: dog)")


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("model:\n  bogus: 1\n", "does not accept option 'bogus'"),
        ("model:\n  width: wide\n", "model.width"),
        ("data:\n  data_dir: /no/such/folder\n", "data_dir not found: /no/such/folder"),
    ],
)
def test_bad_config_is_one_line_exit_2(odd_tree, tmp_path, capsys, yaml_text, expected):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    args = ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={odd_tree}", "-c", str(config),
            f"--trainer.default_root_dir={tmp_path / 'run'}"]
    assert deepconv(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("deepconv train:")]
    assert len(err) == 1 and expected in err[0]
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").glob("*.ckpt"))


def test_a_command_without_its_action_and_an_unwritable_dataset_folder_are_one_line(tmp_path, capsys):
    assert deepconv(["recipe"]) == 2 and deepconv(["benchmark"]) == 2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert deepconv(["data", "digits", str(blocker / "digits")]) == 1  # its parent is a file: cannot be made
    err = capsys.readouterr().err
    assert "choose one of: run" in err and "Traceback" not in err
    lines = [line for line in err.splitlines() if "cannot write" in line]
    assert len(lines) == 1 and lines[0].startswith(f"deepconv data: error: cannot write {blocker / 'digits'}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no staging folder left behind
