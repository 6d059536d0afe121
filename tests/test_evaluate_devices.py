"""`deepconv evaluate --devices N`: N processes (gloo on CPU) each evaluate a shard of the images, and the table
is the one a single device gives, every image counted once; bad device counts and a bad image in any shard are
one-line errors."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.models.checkpoint import ModelMeta, save_model_checkpoint

KEYS = ("model", "method", "test_q", "top1_error", "top5_error", "images")


def random_ckpt(path: Path) -> Path:
    """A narrow VGG-A at random init for the digits' ten classes (a second, different ensemble member)."""
    torch.manual_seed(1)
    meta = ModelMeta("A", 10, [str(c) for c in range(10)], width=0.125, crop_size=32, s_min=36, s_max=36)
    save_model_checkpoint(path, meta.build(), meta)
    return path


def rows(tmp_path: Path, argv: list[str], devices: int, capsys) -> list[dict]:
    out = tmp_path / f"rows_{devices}.json"
    assert deepconv(["evaluate", *argv, "--devices", str(devices), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "51 images, each counted exactly once" in printed
    return [{k: r[k] for k in KEYS} for r in json.loads(out.read_text())]


@pytest.mark.slow
def test_two_processes_on_uneven_shards_give_the_one_device_table(trained_ckpt, digits_dir, tmp_path, capsys):
    other = random_ckpt(tmp_path / "random.ckpt")
    argv = ["--ckpt", str(trained_ckpt), "--ckpt", str(other), "--data", str(digits_dir / "val"), "--limit", "51",
            "--method", "dense", "--scales", "32,41", "--device", "cpu", "--num_workers", "0"]  # 51: shards 26 + 25
    one, two = rows(tmp_path, argv, 1, capsys), rows(tmp_path, argv, 2, capsys)
    assert two == one
    assert [r["model"] for r in one] == [f"{trained_ckpt.parent.name}/best", f"{tmp_path.name}/random", "ensemble of 2"]
    assert one[0]["top1_error"] < 30 < one[1]["top1_error"]  # the trained net and a random one: real numbers
    assert all(r["images"] == 51 for r in two)


@pytest.mark.parametrize(("args", "message"), [
    (["--devices", "0"], "--devices must be at least 1, got 0"),
    (["--devices", str(max(2, torch.cuda.device_count() + 1)), "--device", "cuda"], "CUDA device(s) here"),
    (["--devices", "2", "--device", "cuda:1"], "takes --device auto, cuda or cpu"),
])
def test_bad_device_counts_are_one_line_usage_errors(args, message, tmp_path, capsys):
    ckpt = random_ckpt(tmp_path / "a.ckpt")
    (tmp_path / "val" / "0").mkdir(parents=True)
    assert deepconv(["evaluate", "--ckpt", str(ckpt), "--data", str(tmp_path / "val"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.slow
def test_a_bad_image_in_another_process_is_one_line_and_no_result(digits_dir, tmp_path, capsys):
    ckpt = random_ckpt(tmp_path / "a.ckpt")
    val = tmp_path / "val"
    for c in range(10):
        (val / str(c)).mkdir(parents=True)
        for f in sorted((digits_dir / "val" / str(c)).glob("*.png"))[:1]:
            shutil.copy(f, val / str(c) / f.name)
    (val / "9" / "zz_broken.png").write_bytes(b"not a png")  # the last image: rank 1 of 2 reads it
    out = tmp_path / "rows.json"
    code = deepconv(["evaluate", "--ckpt", str(ckpt), "--data", str(val), "--devices", "2", "--device", "cpu",
                     "--num_workers", "0", "--json", str(out)])
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "zz_broken.png" in err[0] and "Traceback" not in err[0], err
    assert not out.exists()
