"""`deepconv evaluate` on the digits: dense, multi-crop, fused and ensemble rows, files, and one-line usage errors."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepconv_cli.__main__ import main as deepconv

VAL_IMAGES = 359
# Measured with the `trained_ckpt` quickstart VGG-A at Q=36 without flips: top-1 dense 13.1%, multi-crop 2.2%,
# fused 5.0% (top-5 at most 0.8%); the bounds leave room for another machine's training run.
TOP1_BOUND = {"dense": 20.0, "multi-crop": 6.0, "dense+multi-crop": 10.0}
TOP5_BOUND = 5.0


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_reports_dense_multi_crop_and_fused_errors_for_every_val_image(trained_ckpt, digits_dir, tmp_path, capsys):
    out_json, out_csv = tmp_path / "out" / "rows.json", tmp_path / "rows.csv"
    code = deepconv(["evaluate", "--ckpt", str(trained_ckpt), "--data", str(digits_dir), "--method", "dense+multi-crop",
                     "--scales", "36", "--no-flip", "--batch-size", "1024", "--num-workers", "0",
                     "--json", str(out_json), "--csv", str(out_csv)])
    assert code == 0
    captured = capsys.readouterr()
    assert "multi-crop" in captured.out and f"{VAL_IMAGES} images, each counted exactly once" in captured.out
    rows = json.loads(out_json.read_text())
    assert [r["method"] for r in rows] == ["dense", "multi-crop", "dense+multi-crop"]
    for r in rows:
        assert r["images"] == VAL_IMAGES and r["test_q"] == "36" and r["flip"] is False
        assert r["crop"] == 32 and [m["test_q"] for m in r["members"]] == ["36"]  # what `deepconv report` matches
        assert r["top1_error"] < TOP1_BOUND[r["method"]], r
        assert r["top5_error"] < TOP5_BOUND, r
        assert 0 <= r["top5_error"] <= r["top1_error"]
    with out_csv.open() as f:
        table = list(csv.DictReader(f))
    assert [float(r["top1_error"]) for r in table] == [r["top1_error"] for r in rows]
    assert list(out_csv.parent.glob(".*.tmp")) == []  # atomic writes leave no temporary files


def test_an_ensemble_of_one_checkpoint_twice_equals_the_single_model(trained_ckpt, digits_dir, tmp_path):
    single, double = tmp_path / "single.json", tmp_path / "double.json"
    common = ["--method", "10-crop", "--limit", "60", "--batch-size", "1024", "--num-workers", "0"]
    assert deepconv(["evaluate", "--ckpt", str(trained_ckpt), "--data", str(digits_dir), *common,
                     "--json", str(single)]) == 0
    assert deepconv(["evaluate", "--ckpt", str(trained_ckpt), "--ckpt", str(trained_ckpt),
                     "--data", str(digits_dir / "val"), *common, "--json", str(double)]) == 0
    one, two = json.loads(single.read_text()), json.loads(double.read_text())
    assert len(one) == 1 and [r["model"] for r in two][2] == "ensemble of 2"
    assert one[0]["images"] == 60 and one[0]["test_q"] == "32,36,41"  # the paper's S-32, S, S+32, scaled to crop 32
    for r in two:
        assert (r["top1_error"], r["top5_error"], r["images"]) == (one[0]["top1_error"], one[0]["top5_error"], 60)
    assert one[0]["top1_error"] < 15.0


@pytest.fixture
def letters_tree(tmp_path) -> Path:
    """A val tree whose classes (a, b) are not the digits' classes."""
    for name in ("a", "b"):
        (tmp_path / "letters" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "letters" / name / "x.png")
    return tmp_path / "letters"


def test_a_val_folder_with_other_classes_is_a_usage_error(trained_ckpt, letters_tree, capsys):
    assert deepconv(["evaluate", "--ckpt", str(trained_ckpt), "--data", str(letters_tree), "--num-workers", "0"]) == 2
    line = one_line_error(capsys)
    assert "2 class folders" in line and "trained on 10 classes" in line


@pytest.mark.parametrize("case", ["missing ckpt", "missing data", "bad scales", "bad method", "no ckpt"])
def test_bad_arguments_exit_2_with_one_line(case, trained_ckpt, digits_dir, tmp_path, capsys):
    args = {"--ckpt": str(trained_ckpt), "--data": str(digits_dir), "--scales": "36", "--method": "dense"}
    if case == "missing ckpt":
        args["--ckpt"] = str(tmp_path / "nope.ckpt")
    elif case == "missing data":
        args["--data"] = str(tmp_path / "nowhere")
    elif case == "bad scales":
        args["--scales"] = "36,big"
    elif case == "bad method":
        args["--method"] = "dense+center"
    else:
        del args["--ckpt"]
    argv = ["evaluate", "--num-workers", "0", *(x for kv in args.items() for x in kv)]
    assert deepconv(argv) == 2
    line = one_line_error(capsys)
    expected = {"missing ckpt": "nope.ckpt", "missing data": "nowhere", "bad scales": "36,big",
                "bad method": "dense+center", "no ckpt": "--ckpt"}[case]
    assert expected in line


def test_unreadable_val_image_fails_in_one_line_or_is_skipped_and_counted(trained_ckpt, digits_dir, tmp_path, capsys):
    import shutil

    val = tmp_path / "val"
    shutil.copytree(digits_dir / "val", val)
    good = len(list(val.rglob("*.png")))
    (val / "3" / "truncated.png").write_bytes((val / "3" / next(iter(sorted(p.name for p in (val / "3").iterdir()))))
                                              .read_bytes()[:20])
    (val / "5" / "notes.png").write_text("not an image")
    common = ["evaluate", "--ckpt", str(trained_ckpt), "--data", str(val), "--scales", "36", "--no-flip",
              "--num-workers", "0", "--batch-size", "1024"]
    assert deepconv(common) == 1
    assert "cannot read image" in one_line_error(capsys)
    out = tmp_path / "rows.json"
    assert deepconv([*common, "--skip-bad-images", "--json", str(out)]) == 0
    assert "skipping 2 unreadable image file(s)" in capsys.readouterr().err
    assert json.loads(out.read_text())[0]["images"] == good


def test_an_ensemble_averages_the_posteriors_of_different_models(trained_ckpt, digits_dir, tmp_path):
    """Model B always says "0" with certainty; averaged with A, "0" always wins, so the ensemble errs on every
    image that is not a 0 — it would keep A's small error if the second model were ignored."""
    import torch

    from deepconv_cli.models.checkpoint import load_model, save_model_checkpoint

    model, meta = load_model(trained_ckpt)
    with torch.no_grad():
        model.classifier.fc3.weight.zero_()
        model.classifier.fc3.bias.zero_()
        model.classifier.fc3.bias[0] = 100.0
    certain_zero = tmp_path / "zero.ckpt"
    save_model_checkpoint(certain_zero, model, meta)
    out = tmp_path / "rows.json"
    assert deepconv(["evaluate", "--ckpt", str(trained_ckpt), "--ckpt", str(certain_zero), "--data", str(digits_dir),
                     "--method", "dense", "--scales", "36", "--batch-size", "1024", "--num-workers", "0",
                     "--json", str(out)]) == 0
    a, b, ensemble = json.loads(out.read_text())
    not_zero = 100.0 * (VAL_IMAGES - len(list((digits_dir / "val" / "0").iterdir()))) / VAL_IMAGES
    assert a["top1_error"] < 20.0
    assert b["top1_error"] == pytest.approx(not_zero, abs=1e-3)
    assert ensemble["model"] == "ensemble of 2" and ensemble["top1_error"] == pytest.approx(not_zero, abs=1e-3)
