"""A recipe chain killed in the middle resumes the interrupted stage and does not repeat finished ones."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepconv_cli.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def write_chain(tmp_path: Path, digits_dir: Path) -> Path:
    common = [f"--data.data_dir={digits_dir}", "--data.num_workers=0", "--trainer.enable_progress_bar=false"]
    recipe = tmp_path / "chain.yaml"
    recipe.write_text(
        f"run_root: {tmp_path / 'runs'}\n"
        "stages:\n"
        f"  - name: a\n    command: train\n    config: {REPO / 'recipes/quickstart/vgg_a.yaml'}\n"
        f"    args: {common + ['--trainer.max_epochs=2']}\n"
        f"  - name: d\n    command: fine-tune\n    config: {REPO / 'recipes/quickstart/vgg_a.yaml'}\n"
        f"    init_from: a\n    args: {common + ['--model.arch=D', '--trainer.max_epochs=4']}\n"
    )
    return recipe


@pytest.mark.slow
def test_killed_chain_resumes_the_interrupted_stage_only(tmp_path, digits_dir):
    recipe = write_chain(tmp_path, digits_dir)
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "deepconv_cli", "recipe", "run", str(recipe)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not (runs / "d" / "last.ckpt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and the stage it runs, mid-training
    proc.wait()
    assert (runs / "a" / ".stage-done").is_file() and not (runs / "d" / ".stage-done").exists()
    a_done = (runs / "a" / ".stage-done").stat().st_mtime_ns
    a_ckpt = (runs / "a" / "best.ckpt").stat().st_mtime_ns

    out = subprocess.run([sys.executable, "-m", "deepconv_cli", "recipe", "run", str(recipe)],
                         capture_output=True, text=True, timeout=900, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "stage a: done, skipped" in out.stdout
    assert "resuming from" in out.stdout
    assert (runs / "a" / ".stage-done").stat().st_mtime_ns == a_done  # not repeated
    assert (runs / "a" / "best.ckpt").stat().st_mtime_ns == a_ckpt
    assert (runs / "d" / ".stage-done").is_file()
    import torch

    last = torch.load(runs / "d" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 3  # the 4 epochs completed, counting across the interruption


def test_dry_run_and_bad_recipes(tmp_path, digits_dir, capsys):
    recipe = write_chain(tmp_path, digits_dir)
    assert main(["recipe", "run", str(recipe), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "pending" in out and "fine-tune" in out
    assert not (tmp_path / "runs").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - {name: d, command: fine-tune, init_from: a}\n")
    assert main(["recipe", "run", str(bad)]) == 2
    assert "not an earlier stage" in capsys.readouterr().err
    assert main(["recipe", "run", str(tmp_path / "missing.yaml")]) == 2


def test_failing_stage_stops_the_chain_with_its_name(tmp_path, digits_dir, capsys):
    taken = tmp_path / "taken"  # options that parse, a stage that fails when it runs: the folder is not empty
    taken.mkdir()
    (taken / "file").write_text("x")
    recipe = tmp_path / "fail.yaml"
    recipe.write_text(f"run_root: {tmp_path / 'runs'}\nstages:\n"
                      f"  - {{name: broken, command: data, args: [digits, '{taken}']}}\n"
                      "  - {name: never, command: data, args: [digits, '" + str(tmp_path / "d") + "']}\n")
    assert main(["recipe", "run", str(recipe)]) == 1
    assert "stage 'broken' (data) failed with exit code 2" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
