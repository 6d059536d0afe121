"""Ctrl-C is SIGTERM's twin: `deepconv train` finishes the step, saves last.ckpt, names it and the command that
resumes, exits 130 (a second Ctrl-C aborts at once); `recipe run` passes it to its stage and says how to resume;
`features` keeps its finished chunks; none prints a traceback."""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import EPOCHS, STEPS_PER_EPOCH, start_chain, state, train_args, train_recipe
from lightning.pytorch.callbacks import Callback

from deepconv_cli.__main__ import main as deepconv

TESTS = Path(__file__).resolve().parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}


def as_from_a_terminal() -> None:
    """In the child before exec: Ctrl-C delivered and handled as in a shell's fresh command. An ignored SIGINT is
    inherited across exec, and pytest itself runs with SIGINT ignored when a non-interactive shell starts it in the
    background (`pytest ... &` in a script: POSIX shells ignore SIGINT in asynchronous commands without job control),
    as a CI runner or nohup may."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class CtrlC(Callback):
    """Press Ctrl-C `times` times (SIGINT to this process, as a terminal sends it) when training reaches `step`."""

    def __init__(self, step: int, times: int = 1) -> None:
        self.step, self.times = step, times

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)


def train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepconv_cli", *args], env=ENV, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def ctrl_c(times: int) -> str:
    return f'--trainer.callbacks+={{"class_path": "test_ctrl_c.CtrlC", "init_args": {{"step": 7, "times": {times}}}}}'


@pytest.mark.slow
def test_ctrl_c_saves_the_step_exits_130_and_the_printed_command_resumes(small_tree, tmp_path, capsys):
    run_dir = tmp_path / "run"
    done = train([*train_args(small_tree, run_dir), ctrl_c(1)], tmp_path)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr + done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert f"stopped by SIGINT at epoch 1, step 8: saved {run_dir / 'last.ckpt'}; run `deepconv train " in last
    saved = state(run_dir / "last.ckpt")
    assert (saved["epoch"], saved["global_step"]) == (1, 8)  # the running step finished, then was saved

    command = shlex.split(last.split("`")[1])
    assert command[:2] == ["deepconv", "train"]
    assert deepconv(command[1:]) == 0  # the command it printed, as a user pastes it
    assert f"resuming from {run_dir / 'last.ckpt'}" in capsys.readouterr().out
    final = state(run_dir / "last.ckpt")
    assert (final["epoch"], final["global_step"]) == (EPOCHS - 1, EPOCHS * STEPS_PER_EPOCH)


@pytest.mark.slow
def test_a_second_ctrl_c_aborts_at_once_with_one_line(small_tree, tmp_path):
    run_dir = tmp_path / "run"
    done = train([*train_args(small_tree, run_dir), ctrl_c(2)], tmp_path)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "interrupted again: aborted at once" in done.stderr.strip().splitlines()[-1]
    assert state(run_dir / "last.ckpt")["global_step"] == STEPS_PER_EPOCH  # the epoch-1 checkpoint: nothing newer


@pytest.mark.slow
def test_ctrl_c_to_recipe_run_stops_its_stage_saved_and_exits_130(small_tree, tmp_path):
    recipe = train_recipe(tmp_path, small_tree)
    run_dir = tmp_path / "runs" / "a"
    proc, _ = start_chain(recipe, run_dir / "last.ckpt")
    before = (run_dir / "last.ckpt").stat().st_mtime_ns
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert "stopped by SIGINT during stage 'a'" in err.strip().splitlines()[-1]
    assert "run the same command again to resume" in err.strip().splitlines()[-1]
    assert "stopped by SIGINT at epoch" in err  # the stage saved the step it was in
    assert (run_dir / "last.ckpt").stat().st_mtime_ns > before
    torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_ctrl_c_to_features_is_one_line_130_and_the_rerun_resumes(net_ckpt, digits_dir, tmp_path, capsys):
    out = tmp_path / "f.safetensors"
    parts = out.with_name(out.name + ".parts")
    args = ["features", "--ckpt", str(net_ckpt), "--data", str(digits_dir / "val"), "--out", str(out),
            "--scales", "64", "--chunk-size", "16", "--num-workers", "0"]
    proc = subprocess.Popen([sys.executable, "-m", "deepconv_cli", *args], env=ENV, stderr=subprocess.PIPE,
                            preexec_fn=as_from_a_terminal,
                            stdout=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 120
    while len(list(parts.glob("chunk-*.safetensors"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("deepconv features: interrupted")
    finished = len(list(parts.glob("chunk-*.safetensors")))
    assert finished >= 2 and not out.exists()
    assert deepconv(args) == 0
    assert f"resumed: {finished} of 23 chunks were already written" in capsys.readouterr().out


@pytest.mark.slow
def test_ctrl_c_during_the_data_scan_is_one_line_130(small_tree, tmp_path, capsys, monkeypatch):
    """Ctrl-C before training starts (the bad-image scan and statistics in prepare_data) is one line and exit 130,
    not Lightning's KeyboardInterrupt banner and exit 1; nothing is saved."""
    from deepconv_cli.data.datamodule import ImageFolderData

    monkeypatch.setattr(ImageFolderData, "prepare_data", lambda self: os.kill(os.getpid(), signal.SIGINT))
    handler = signal.getsignal(signal.SIGINT)
    assert deepconv(train_args(small_tree, tmp_path / "run")) == 130
    err = capsys.readouterr().err.strip()
    assert err == "deepconv train: error: interrupted (Ctrl-C) before training started: nothing to save"
    assert not (tmp_path / "run" / "last.ckpt").exists() and signal.getsignal(signal.SIGINT) is handler


@pytest.mark.slow
def test_ctrl_c_to_data_pack_is_one_line_130_and_the_rerun_finishes_the_same_pack(small_tree, tmp_path):
    """Ctrl-C in a terminal reaches the whole process group, litdata's packing processes included: one line, exit
    130 (litdata alone exits 0 with a traceback per process), no OUT; the same command again gives the pack an
    uninterrupted run gives, item for item."""
    from deepconv_cli.data.packed import PackedSplit, read_meta

    out, staging = tmp_path / "pack", tmp_path / ".pack.packing"
    args = [sys.executable, "-m", "deepconv_cli", "data", "pack", str(small_tree), str(out), "--workers", "2"]
    proc = subprocess.Popen(args, env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            start_new_session=True,  # its own process group, as a terminal's foreground job
                            preexec_fn=as_from_a_terminal)
    deadline = time.monotonic() + 120
    while not (staging / "train" / ".checkpoints" / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # the packing processes are starting
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "leaked" not in err, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("deepconv data: error: interrupted (Ctrl-C) while packing train")
    assert not out.exists() and staging.is_dir()
    rerun = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    fresh = tmp_path / "fresh"
    assert deepconv(["data", "pack", str(small_tree), str(fresh), "--workers", "1"]) == 0
    assert read_meta(out) == read_meta(fresh)
    for split in ("train", "val"):
        a, b = PackedSplit(out, split, read_meta(out)), PackedSplit(fresh, split, read_meta(fresh))
        for i in range(len(a)):
            assert a.open_rgb(i).tobytes() == b.open_rgb(i).tobytes(), (split, i)
