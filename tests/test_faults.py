"""Faults lose nothing: kill -9 and re-run resumes to the uninterrupted result, SIGTERM/SIGUSR1 save and exit
143, a truncated last.ckpt falls back to the previous one, a non-finite loss stops without touching checkpoints."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import EPOCHS, STEPS_PER_EPOCH, state, train_args

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.training.faults import AtomicCheckpointIO, resume_checkpoint


@pytest.fixture(scope="module")
def uninterrupted(small_tree, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    assert deepconv(train_args(small_tree, run_dir)) == 0
    return run_dir


@pytest.mark.slow
def test_kill9_then_rerun_resumes_to_the_uninterrupted_result(small_tree, uninterrupted, tmp_path, capsys):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "deepconv_cli", *train_args(small_tree, run_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.time() + 240
    while not (run_dir / "last.prev.ckpt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)  # in epoch 1 or later, possibly while writing a checkpoint
    proc.wait()
    killed_at = state(resume_checkpoint(run_dir))
    assert killed_at["global_step"] < EPOCHS * STEPS_PER_EPOCH

    assert deepconv(train_args(small_tree, run_dir)) == 0  # the same command again
    assert "resuming from" in capsys.readouterr().out
    a, b = state(uninterrupted / "last.ckpt"), state(run_dir / "last.ckpt")
    assert (b["epoch"], b["global_step"]) == (a["epoch"], a["global_step"]) == (EPOCHS - 1, EPOCHS * STEPS_PER_EPOCH)
    assert b["optimizer_states"][0]["param_groups"][0]["lr"] == a["optimizer_states"][0]["param_groups"][0]["lr"]
    for name, weight in a["state_dict"].items():  # same data order and augmentation after the resume: exact
        assert torch.equal(b["state_dict"][name], weight), name


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_stop_signal_saves_the_step_and_exits_143_then_resumes(small_tree, tmp_path, capsys, signum):
    run_dir = tmp_path / "run"
    stop = (
        f'--trainer.callbacks+={{"class_path": "helpers.SignalAtStep", '
        f'"init_args": {{"step": 7, "signum": {int(signum)}}}}}'
    )
    assert deepconv([*train_args(small_tree, run_dir), stop]) == 143
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"stopped by {signal.Signals(signum).name} at epoch 1, step 8" in err
    saved = state(run_dir / "last.ckpt")
    assert (saved["epoch"], saved["global_step"]) == (1, 8)  # the step that was running finished, then saved
    if signum == signal.SIGTERM:
        assert deepconv(train_args(small_tree, run_dir)) == 0
        done = state(run_dir / "last.ckpt")
        assert (done["epoch"], done["global_step"]) == (EPOCHS - 1, EPOCHS * STEPS_PER_EPOCH)


@pytest.mark.slow
def test_truncated_last_checkpoint_is_reported_and_the_previous_one_used(small_tree, uninterrupted, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    data = (run_dir / "last.ckpt").read_bytes()
    (run_dir / "last.ckpt").write_bytes(data[: len(data) // 2])
    assert resume_checkpoint(run_dir) == run_dir / "last.prev.ckpt"
    assert "cannot resume from" in capsys.readouterr().err

    previous = state(run_dir / "last.prev.ckpt")["global_step"]
    assert deepconv(train_args(small_tree, run_dir, epochs=EPOCHS + 1)) == 0
    out = capsys.readouterr()
    assert f"cannot resume from {run_dir / 'last.ckpt'}: truncated" in out.err
    assert f"resuming from {run_dir / 'last.prev.ckpt'}" in out.out
    assert state(run_dir / "last.ckpt")["global_step"] == previous + 2 * STEPS_PER_EPOCH


def test_checkpoint_write_that_fails_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - any pickling error
        io.save_checkpoint({"step": 2, "bad": lambda: None}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


@pytest.mark.slow
def test_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    small_tree, uninterrupted, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    good = {name: (run_dir / name).read_bytes() for name in ("last.ckpt", "best.ckpt")}
    args = [*train_args(small_tree, run_dir, epochs=2), "--resume=false", "--model.lr=1e12"]
    assert deepconv(args) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("deepconv train: error:")]
    assert len(errors) == 1 and "non-finite" in errors[0] and "step 1" in errors[0]
    assert {name: (run_dir / name).read_bytes() for name in good} == good
