"""Recipe runs that cannot leave a stage behind or start half-prepared: SIGTERM is passed on and waited for (exit
143), a kill -9 of the runner takes its stage with it, a changed stage is not silently skipped, missing data
and checkpoints are all reported before anything starts, and the dry run prints commands a user can paste."""

import json
import os
import shlex
import signal
import time
from pathlib import Path

import pytest
import torch
from helpers import QUICKSTART_A, digits_subset, start_chain, train_recipe

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.recipes.runner import load_recipe


@pytest.fixture(scope="module")
def small_tree(digits_dir, tmp_path_factory) -> Path:
    return digits_subset(digits_dir, tmp_path_factory.mktemp("small"), 6, 2)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigterm_to_the_runner_stops_its_stage_saved_and_exits_143(small_tree, tmp_path):
    recipe = train_recipe(tmp_path, small_tree)
    run_dir = tmp_path / "runs" / "a"
    proc, stage = start_chain(recipe, run_dir / "last.ckpt")
    before = (run_dir / "last.ckpt").stat().st_mtime_ns
    proc.send_signal(signal.SIGTERM)  # the runner only, as `kill PID` or a scheduler does
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM during stage 'a'" in err.strip().splitlines()[-1]
    assert not alive(stage)
    assert "stopped by SIGTERM at epoch" in err  # the stage saved on its way out ...
    assert (run_dir / "last.ckpt").stat().st_mtime_ns > before  # ... a checkpoint written after the signal
    torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)
    assert not (run_dir / ".stage-done").exists()


@pytest.mark.slow
def test_kill_9_of_the_runner_takes_its_stage_with_it(small_tree, tmp_path):
    recipe = train_recipe(tmp_path, small_tree)
    proc, stage = start_chain(recipe, tmp_path / "runs" / "a" / "config.yaml")
    os.kill(proc.pid, signal.SIGKILL)  # the runner only; the stage is not in its process group
    proc.wait()
    deadline = time.time() + 20
    while alive(stage) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(stage), "the stage kept training after its runner was killed"


def test_a_changed_stage_is_run_again_not_silently_skipped(tmp_path, capsys):
    recipe = tmp_path / "data.yaml"
    recipe.write_text(f"run_root: {tmp_path / 'runs'}\nstages:\n"
                      f"  - {{name: digits, command: data, args: [digits, '{tmp_path / 'one'}']}}\n")
    assert deepconv(["recipe", "run", str(recipe)]) == 0
    assert deepconv(["recipe", "run", str(recipe)]) == 0
    assert "stage digits: done, skipped" in capsys.readouterr().out
    recipe.write_text(recipe.read_text().replace("'one'", "'two'").replace("/one'", "/two'"))
    assert deepconv(["recipe", "run", str(recipe)]) == 0
    assert "changed since it finished: running again" in capsys.readouterr().out
    assert (tmp_path / "two" / "train").is_dir()


def test_a_stage_whose_inputs_were_rewritten_after_it_finished_is_run_again(tmp_path, capsys):
    """A report stage re-reads the run root's results after an earlier stage re-ran; a stage named a file written
    after it finished (features for linear-svm) runs again; data folders are not walked."""
    runs = tmp_path / "runs"
    result = runs / "eval" / "results.json"
    result.parent.mkdir(parents=True)
    result.write_text(json.dumps([{"model": "a", "arch": "A", "train_s": "36", "test_q": "36", "method": "dense",
                                   "flip": True, "top1_error": 35.0, "top5_error": 5.0, "images": 359, "crop": 32,
                                   "dataset": "digits", "classes": 10, "limit": 0}]))
    recipe = tmp_path / "report.yaml"
    recipe.write_text(f"run_root: {runs}\nstages:\n  - {{name: report, command: report, args: ['{{run_root}}']}}\n")
    assert deepconv(["recipe", "run", str(recipe)]) == 0
    assert deepconv(["recipe", "run", str(recipe)]) == 0
    assert "stage report: done, skipped" in capsys.readouterr().out
    marker = runs / "report" / ".stage-done"
    later = marker.stat().st_mtime_ns + 1_000_000_000
    os.utime(result, ns=(later, later))  # the evaluation stage ran again
    assert deepconv(["recipe", "run", str(recipe)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "changed since it finished: running again" in out and "done, skipped" not in out

    loaded = load_recipe(recipe)
    features, data = tmp_path / "features.safetensors", tmp_path / "data"
    features.write_bytes(b"x")
    (data / "a").mkdir(parents=True)
    (data / "a" / "x.json").write_text("{}")
    os.utime(features, ns=(later, later))
    os.utime(data / "a" / "x.json", ns=(later, later))
    os.utime(marker, ns=(later - 1, later - 1))  # finished just before the features and the data file were written
    assert loaded.inputs_newer_than(["linear-svm", "--features", str(features)], marker)
    assert not loaded.inputs_newer_than(["report", str(data)], marker)  # outside the run root: not walked
    assert not loaded.inputs_newer_than(["train", "-c", str(features)], marker)  # a config counts by its content


def test_a_changed_training_stage_is_kept_and_named_with_how_to_retrain(small_tree, tmp_path, capsys):
    recipe = train_recipe(tmp_path, small_tree)
    run_dir = tmp_path / "runs" / "a"
    run_dir.mkdir(parents=True)
    (run_dir / ".stage-done").write_text(json.dumps({"command": "deepconv train ...", "fingerprint": "older"}))
    assert deepconv(["recipe", "run", str(recipe)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "stage a: finished with other settings" in out and "pass --rerun a to train it again" in out
    assert not (run_dir / "last.ckpt").exists()  # nothing was trained
    assert deepconv(["recipe", "run", str(recipe), "--dry-run", "--rerun", "a"]) == 0
    assert "--resume=false" in capsys.readouterr().out


def test_missing_data_and_checkpoints_are_all_reported_before_anything_starts(tmp_path, capsys):
    recipe = tmp_path / "broken.yaml"
    recipe.write_text(
        f"run_root: {tmp_path / 'runs'}\nstages:\n"
        f"  - {{name: a, command: train, config: {QUICKSTART_A}, args: ['--data.data_dir={tmp_path / 'nodata'}']}}\n"
        f"  - {{name: ev, command: evaluate, args: [--ckpt, '{tmp_path / 'missing.ckpt'}', --data, "
        f"'{tmp_path / 'noval'}']}}\n"
        "  - {name: ev_a, command: evaluate, ckpt: a, args: [--data, '" + str(tmp_path / "noval") + "']}\n")
    for dry in (["--dry-run"], []):
        assert deepconv(["recipe", "run", str(recipe), *dry]) == 2
        err = capsys.readouterr().err
        problems = [line for line in err.splitlines() if "problem:" in line]
        assert len(problems) == 3, err
        assert f"stage a: data folder {tmp_path / 'nodata'} not found" in err
        assert f"stage ev: checkpoint {tmp_path / 'missing.ckpt'} not found" in err
        assert f"stages ev, ev_a: data folder {tmp_path / 'noval'} not found" in err
        assert "nothing was started" in err.splitlines()[-1]
        assert not (tmp_path / "runs").exists()


def test_dry_run_prints_whole_commands_a_user_can_paste(small_tree, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal must not break a command in the middle
    recipe = train_recipe(tmp_path, small_tree)
    assert deepconv(["recipe", "run", str(recipe), "--dry-run"]) == 0
    out = capsys.readouterr().out
    commands = [line for line in out.splitlines() if line.startswith("deepconv ")]
    stage = load_recipe(recipe).stages[0]
    assert commands == [shlex.join(["deepconv", *load_recipe(recipe).argv(stage)])]
    assert not (tmp_path / "runs").exists()


def test_a_fine_tune_run_records_its_init_checkpoint_in_config_yaml(small_tree, tmp_path):
    from deepconv_cli.models.checkpoint import ModelMeta, save_model_checkpoint

    meta = ModelMeta("A", 10, [str(c) for c in range(10)], width=0.125, crop_size=32, s_min=36, s_max=36)
    source = tmp_path / "a.ckpt"
    save_model_checkpoint(source, meta.build(), meta)
    run_dir = tmp_path / "d"
    assert deepconv(["fine-tune", "-c", str(QUICKSTART_A), "--init-from", str(source), "--model.arch=D",
                     f"--data.data_dir={small_tree}", f"--trainer.default_root_dir={run_dir}", "--data.batch_size=20",
                     "--data.num_workers=0", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]) == 0
    import yaml

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["init_from"] == str(source) and config["model"]["arch"] == "D"
