"""A run's lifecycle (training/lifecycle.py): one training at a time in a run folder, and a run killed with SIGKILL
at any stage (before taking the lock, holding it, mid-fit, after recording its finish) never keeps the next one out."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICKSTART_A
from filelock import FileLock
from helpers import digits_subset

from deepconv_cli.__main__ import main as deepconv

TESTS = Path(__file__).resolve().parent
# Runs `deepconv ARGV...` after wrapping the lifecycle so that the process SIGKILLs itself (or waits) at STAGE.
DRIVER = """
import os, signal, sys, time
from deepconv_cli.training.lifecycle import RunLifecycle
stage, enter, finish = sys.argv[1], RunLifecycle.__enter__, RunLifecycle.finish

def stop_at(name):
    if stage == name == "holding":
        print("holding", flush=True)
        time.sleep(300)
    elif stage == name:
        os.kill(os.getpid(), signal.SIGKILL)

def entered(self):
    stop_at("before_lock")
    run = enter(self)
    stop_at("holding")
    return run

def finished(self, trainer):
    finish(self, trainer)
    stop_at("after_finish")

RunLifecycle.__enter__, RunLifecycle.finish = entered, finished
from deepconv_cli.__main__ import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def tiny_tree(digits_dir, tmp_path_factory) -> Path:
    return digits_subset(digits_dir, tmp_path_factory.mktemp("tiny"), 10, 5)  # 5 steps of 20 images an epoch


def args(data: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={data}", f"--trainer.default_root_dir={run_dir}",
            "--data.batch_size=20", "--data.num_workers=0", "--trainer.max_epochs=2",
            "--trainer.enable_progress_bar=false", *extra]


def start(stage: str, argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", DRIVER, stage, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def lock_is_free(run: Path) -> bool:
    try:
        with FileLock(run / ".lock", timeout=0):
            return True
    except TimeoutError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["before_lock", "mid_fit", "after_finish"])
def test_a_run_killed_at_any_stage_leaves_the_folder_to_the_next_run(stage, tiny_tree, tmp_path, capsys):
    run = tmp_path / "run"
    kill = ['--trainer.callbacks+={"class_path": "helpers.SignalAtStep", "init_args": {"step": 7, "signum": 9}}']
    child = start(stage, args(tiny_tree, run, *(kill if stage == "mid_fit" else [])))
    out, _ = child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL, out
    if stage == "before_lock":  # parsing and building the run wrote nothing into its folder
        assert not run.exists() or not any(run.iterdir())
    assert deepconv(args(tiny_tree, run)) == 0
    printed = capsys.readouterr().out
    assert "note: no -c config" not in printed  # the CPU note is for runs without a recipe
    if stage == "before_lock":
        assert "resuming" not in printed and (run / "best.ckpt").is_file()
    elif stage == "mid_fit":  # killed at step 7 (epoch 1): the rerun continues from epoch 0's last.ckpt
        assert f"resuming from {run / 'last.ckpt'}" in printed
    else:
        assert f"{run} already finished: it trained its 2 epochs" in printed
    assert lock_is_free(run)


@pytest.mark.slow
def test_a_second_training_into_a_busy_folder_is_one_line_and_the_killed_owner_frees_it(tiny_tree, tmp_path,
                                                                                         capsys):
    run = tmp_path / "run"
    owner = start("holding", args(tiny_tree, run))
    try:
        printed = []
        for line in owner.stdout:  # until the owner took the lock and waits there (or ended: the test fails)
            printed.append(line)
            if line.strip() == "holding":
                break
        assert printed[-1:] == ["holding\n"], "".join(printed)
        assert deepconv(args(tiny_tree, run)) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{run} is in use by another training (pid {owner.pid} on " in err[0], err
        assert not (run / "last.ckpt").exists()  # the refused run touched nothing
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.communicate()
    assert deepconv(args(tiny_tree, run)) == 0  # the killed owner's lock went with its process
    assert (run / "best.ckpt").is_file() and lock_is_free(run)
