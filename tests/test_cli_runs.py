"""A run directory tells the truth and keeps it: the stop after the learning-rate drops, a finished run stays
finished, a smaller max_epochs is one line, history and best score survive resumes and moved folders,
curves.png also after an interruption (one training at a time: test_lifecycle.py)."""

import csv
import hashlib
from pathlib import Path

import pytest
import torch
from helpers import QUICKSTART_A, digits_subset

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.training.callbacks import lr_drops


@pytest.fixture(scope="module")
def tiny_tree(digits_dir, tmp_path_factory) -> Path:
    return digits_subset(digits_dir, tmp_path_factory.mktemp("tiny"), 10, 5)


def args(data: Path, run_dir: Path, epochs: int, *extra: str) -> list[str]:
    return ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={data}", f"--trainer.default_root_dir={run_dir}",
            "--data.batch_size=20", "--data.num_workers=0", f"--trainer.max_epochs={epochs}",
            "--trainer.enable_progress_bar=false", *extra]


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def val_errors(run_dir: Path) -> dict[int, float]:
    return {int(r["epoch"]): float(r["val/top1_error"]) for r in rows(run_dir) if r.get("val/top1_error")}


def digest(run_dir: Path) -> dict[str, str]:
    """The run's files (not .lock: each run that takes the lock writes its own pid and time there)."""
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(run_dir.iterdir())
            if p.is_file() and p.name != ".lock"}


def test_stops_at_the_plateau_after_the_last_drop_and_says_so_truly_then_stays_finished(tiny_tree, tmp_path, capsys):
    run = tmp_path / "run"
    plateau = ["--model.lr_patience=0", "--model.max_lr_drops=1"]
    assert deepconv(args(tiny_tree, run, 12, *plateau)) == 0
    out = capsys.readouterr()
    table = rows(run)
    epochs = sorted(val_errors(run))
    assert epochs == list(range(len(epochs))) and len(epochs) < 12
    stop = [line for line in out.out.splitlines() if "learning-rate drop" in line]
    assert stop == [(f"validation error stopped improving at learning rate 0.001, after 1 learning-rate drop "
                    f"(model.max_lr_drops 1): training stops at epoch {len(epochs)}")]
    assert [lr for _, lr in lr_drops(table)] == [0.001]  # one drop, not two, before the stop
    assert "max_epochs" not in out.out + out.err and "Tip:" not in out.out + out.err and "FLOPs" not in out.out
    assert all("nan" not in str(v).lower() for r in table for v in r.values())  # no empty last epoch
    before = digest(run)
    assert deepconv(args(tiny_tree, run, 12, *plateau)) == 0
    assert "already finished" in capsys.readouterr().out
    assert digest(run) == before  # metrics.csv, config.yaml, checkpoints, curves.png: all as they were


def test_smaller_max_epochs_is_one_line_larger_extends_and_the_best_survives_a_moved_folder(
    tiny_tree, tmp_path, capsys
):
    first = tmp_path / "first"
    assert deepconv(args(tiny_tree, first, 2)) == 0
    config = (first / "config.yaml").read_bytes()
    capsys.readouterr()
    assert deepconv(args(tiny_tree, first, 1)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume false" in err[0] and "Traceback" not in err[0]
    assert (first / "config.yaml").read_bytes() == config
    assert deepconv(args(tiny_tree, first, 2)) == 0
    assert "already finished" in capsys.readouterr().out
    last = torch.load(first / "last.ckpt", map_location="cpu", weights_only=True)
    for key, value in last["callbacks"].items():  # a best score no later epoch can beat
        if "val/top1_error" in key:
            value["best_model_score"] = value["kth_value"] = torch.tensor(0.5)
            value["best_k_models"] = {path: torch.tensor(0.5) for path in value["best_k_models"]}
    torch.save(last, first / "last.ckpt")
    best_before = digest(first)["best.ckpt"]
    moved = tmp_path / "moved"
    first.rename(moved)
    assert deepconv(args(tiny_tree, moved, 4)) == 0
    assert sorted(val_errors(moved)) == [0, 1, 2, 3]  # the history of the first two epochs is kept
    assert digest(moved)["best.ckpt"] == best_before  # no worse epoch replaced the best one
    saved = torch.load(moved / "last.ckpt", map_location="cpu", weights_only=True)
    best = [v["best_model_score"] for k, v in saved["callbacks"].items() if "val/top1_error" in k]
    assert float(best[0]) == 0.5


def test_sigterm_writes_curves_and_the_resumed_run_keeps_every_epoch_once(tiny_tree, tmp_path, capsys):
    run = tmp_path / "run"
    stop = '--trainer.callbacks+={"class_path": "helpers.SignalAtStep", "init_args": {"step": 7, "signum": 15}}'
    assert deepconv([*args(tiny_tree, run, 3), stop]) == 143
    assert (run / "curves.png").stat().st_size > 0 and sorted(val_errors(run)) == [0]
    (run / "curves.png").unlink()
    assert deepconv(args(tiny_tree, run, 3)) == 0
    table = rows(run)
    assert sorted(val_errors(run)) == [0, 1, 2]
    steps = [int(r["step"]) for r in table if r.get("train/loss_step")]
    assert len(steps) == len(set(steps))  # no step logged twice across the resume
    assert sum(1 for r in table if r.get("val/top1_error")) == 3
    assert (run / "curves.png").is_file()


def test_curves_mark_the_learning_rate_drops():
    table = [{"epoch": "", "lr-SGD": "0.01"}, {"epoch": "0", "lr-SGD": ""}, {"epoch": "", "lr-SGD": "0.01"},
             {"epoch": "1", "lr-SGD": ""}, {"epoch": "", "lr-SGD": "0.001"}, {"epoch": "2", "lr-SGD": ""},
             {"epoch": "", "lr-SGD": "0.0001"}, {"epoch": "3", "lr-SGD": ""}]
    assert lr_drops(table) == [(3, 0.001), (4, 0.0001)]  # 1-based epochs that start at the lower rate


def test_cpu_run_without_config_says_what_it_trains_and_warns_about_too_many_workers(tiny_tree, tmp_path, capsys,
                                                                                   monkeypatch):
    monkeypatch.setattr("deepconv_cli.training.resources.usable_cores", lambda: 1)
    argv = ["train", f"--data.data_dir={tiny_tree}", f"--trainer.default_root_dir={tmp_path / 'run'}",
            "--trainer.accelerator=cpu", "--model.width=0.125", "--data.crop_size=32", "--data.s_min=36",
            "--data.s_max=36", "--data.batch_size=10", "--data.num_workers=2", "--trainer.fast_dev_run=true",
            "--trainer.enable_progress_bar=false"]
    assert deepconv(argv) == 0
    out = capsys.readouterr()
    note = [line for line in out.out.splitlines() if line.startswith("note: no -c config")]
    assert len(note) == 1 and "VGG-A at width 0.125" in note[0] and "batch 10" in note[0]
    assert "recipes/quickstart/vgg_a.yaml" in note[0]
    assert "2 loader workers x 1 process(es) on 1 usable CPU cores" in out.err


def test_full_help_is_titled_deepconv_and_has_the_trainer_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        deepconv(["fine-tune", "--help", "trainer"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "deepconv fine-tune: train a network" in out and "Lightning Trainer command line tool" not in out
    assert "--trainer.precision" in out and "--init_from" in out


def test_trainer_options_are_not_abbreviated(tiny_tree, tmp_path, capsys):
    assert deepconv(args(tiny_tree, tmp_path / "run", 1, "--trainer.max_epoch", "1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean --trainer.max_epochs?" in err[0]
    assert not (tmp_path / "run").exists()
