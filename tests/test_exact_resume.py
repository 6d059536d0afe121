"""Mid-epoch resume on packed data is exact with the recipes' loader workers: kill -9, SIGTERM and Ctrl-C (to the
whole process group, as a terminal sends it) in a subprocess running `deepconv train` with 2 workers, then the same
command again, end with every tensor of the final checkpoint (weights and optimizer state) equal to an
uninterrupted run's, the rerun starting at the saved step, and the same epoch metrics."""

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import digits_subset
from lightning.pytorch.callbacks import Callback

from deepconv_cli.__main__ import main as deepconv

TESTS = Path(__file__).resolve().parent
LENET = TESTS.parent / "recipes" / "quickstart" / "lenet5.yaml"
ENV = {**os.environ, "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
STEPS_PER_EPOCH, EPOCHS, EVERY = 12, 2, 5  # 400 images, batch 32; last.ckpt also at steps 5, 10, 15, 20


class Steps(Callback):
    """Write each training step's global step to `log`; at step `at`, send `signum` (SIGINT: to the process group,
    loader workers included, as a terminal's Ctrl-C)."""

    def __init__(self, log: str, at: int = -1, signum: int = 0) -> None:
        self.path, self.at, self.signum = log, at, signum

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        with open(self.path, "a") as f:
            f.write(f"{trainer.global_step}\n")
        if trainer.global_step == self.at:
            if self.signum == signal.SIGINT:
                os.killpg(os.getpgid(0), signal.SIGINT)
            else:
                os.kill(os.getpid(), self.signum)


@pytest.fixture(scope="module")
def pack(digits_dir, tmp_path_factory) -> Path:
    tree = digits_subset(digits_dir, tmp_path_factory.mktemp("tree"), 40, 10)
    out = tmp_path_factory.mktemp("packs") / "digits"
    assert deepconv(["data", "pack", str(tree), str(out), "--workers", "1"]) == 0
    return out


def train(pack: Path, run_dir: Path, steps_log: Path, at: int = -1, signum: int = 0) -> subprocess.CompletedProcess:
    """The recipe's command (LeNet-5, 2 loader workers, sanity check on), in its own process group."""
    steps = (f'--trainer.callbacks+={{"class_path": "test_exact_resume.Steps", "init_args": {{"log": "{steps_log}", '
             f'"at": {at}, "signum": {int(signum)}}}}}')
    args = ["train", "-c", str(LENET), f"--data.data_dir={pack}", f"--trainer.default_root_dir={run_dir}",
            f"--trainer.max_epochs={EPOCHS}", "--data.num_workers=2", f"--last_every_n_steps={EVERY}",
            "--trainer.enable_progress_bar=false", steps]
    return subprocess.run([sys.executable, "-m", "deepconv_cli", *args], env=ENV, cwd=run_dir.parent,
                          capture_output=True, text=True, timeout=300, start_new_session=True)


def tensors(obj, prefix: str = ""):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from tensors(value, f"{prefix}/{key}")
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            yield from tensors(value, f"{prefix}/{i}")


def final_state(run_dir: Path) -> dict:
    saved = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=False)
    return dict(tensors({"weights": saved["state_dict"], "optimizer": saved["optimizer_states"]}))


def epoch_metrics(run_dir: Path) -> dict:
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keys = ("train/loss_epoch", "val/loss", "val/top1_error", "val/images")
    return {key: [row[key] for row in rows if row.get(key)] for key in keys}


def epoch_seconds(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [float(r["time/train_seconds"]) for r in csv.DictReader(f) if r.get("time/train_seconds")]


@pytest.fixture(scope="module")
def uninterrupted(pack, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    done = train(pack, run_dir, run_dir.parent / "steps")
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "at", "code", "saved_step"), [
    (signal.SIGKILL, 8, -9, 5),  # epoch 0, as in the issue: the rerun continues from the step-5 save
    (signal.SIGTERM, 6, 143, 7),  # epoch 0, before the first validation: the running step finishes and is saved
    (signal.SIGINT, 14, 130, 15),  # epoch 1, after a validation; Ctrl-C to the process group, workers included
], ids=["kill-9", "sigterm", "ctrl-c"])
def test_interrupted_then_rerun_equals_the_uninterrupted_run(pack, uninterrupted, tmp_path, signum, at, code,
                                                             saved_step):
    run_dir, log = tmp_path / "run", tmp_path / "steps"
    stopped = train(pack, run_dir, log, at=at, signum=signum)
    assert stopped.returncode == code, stopped.stderr[-3000:]
    if signum != signal.SIGKILL:
        assert "Traceback" not in stopped.stderr and "weights_only" not in stopped.stderr + stopped.stdout
        assert f"stopped by {signal.Signals(signum).name} at epoch {saved_step // STEPS_PER_EPOCH}, step {saved_step}" \
            in stopped.stderr.strip().splitlines()[-1]
        assert stopped.stderr.count("Ctrl-C: finishing this step") == (signum == signal.SIGINT)
    before = log.read_text().split()
    log.unlink()
    saved = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == saved_step
    seconds_before = saved["callbacks"]["EpochSoFar"]["seconds"]  # of the interrupted epoch, before the stop
    assert saved["callbacks"]["EpochThroughput"]["images"] == saved_step % STEPS_PER_EPOCH * 32

    rerun = train(pack, run_dir, log)  # the same command again
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    steps = [int(s) for s in log.read_text().split()]
    assert steps == list(range(saved_step, EPOCHS * STEPS_PER_EPOCH)), (before, steps)  # from the saved step on
    a, b = final_state(uninterrupted), final_state(run_dir)
    assert a.keys() == b.keys() and len(a) > 20
    for name, tensor in a.items():
        assert torch.equal(b[name], tensor), name
    assert epoch_metrics(run_dir) == epoch_metrics(uninterrupted)
    assert epoch_seconds(run_dir)[saved_step // STEPS_PER_EPOCH] > seconds_before  # the whole epoch's time
