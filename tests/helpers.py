"""Test helpers shared by several test files: the quickstart recipe, small digit trees, training and recipe command
lines, a callback that signals the process, the runner's child processes."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image

from deepconv_cli.data.digits import load_digits

PER_CLASS = {"train": 24, "val": 8}
REPO = Path(__file__).resolve().parents[1]
QUICKSTART_A = REPO / "recipes" / "quickstart" / "vgg_a.yaml"  # the narrow VGG-A recipe most training tests run
EPOCHS, STEPS_PER_EPOCH = 4, 5  # train_args on the conftest's small_tree: 100 training images, batch 20


def digits_subset(digits_dir: Path, root: Path, train_per_class: int, val_per_class: int) -> Path:
    """root/train and root/val with the first N images of each of the ten digit classes (sorted by name)."""
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for c in range(10):
            (root / split / str(c)).mkdir(parents=True, exist_ok=True)
            for f in sorted((digits_dir / split / str(c)).glob("*.png"))[:per_class]:
                shutil.copy(f, root / split / str(c) / f.name)
    return root


class SignalAtStep(Callback):
    """Send this process `signum` once training reaches `step` (what `kill -TERM PID` does, at a known moment)."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class PauseAtStep(Callback):
    """On a job's first run only (SLURM_RESTART_COUNT unset or 0), wait at `step` until a signal arrives (at most
    `seconds`), after writing RUN_DIR/paused: a SLURM requeue or time-limit signal then lands at a known step. Every
    run appends each step it trains to RUN_DIR/steps, so a test sees where a resumed run started."""

    def __init__(self, step: int, seconds: float = 300) -> None:
        self.step, self.seconds = step, seconds

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        import time

        if trainer.is_global_zero:
            with open(Path(trainer.default_root_dir) / "steps", "a") as log:
                log.write(f"{trainer.global_step}\n")
        if trainer.global_step != self.step or os.environ.get("SLURM_RESTART_COUNT", "0") != "0":
            return
        if trainer.is_global_zero:
            (Path(trainer.default_root_dir) / "paused").write_text(str(self.step))
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not any(getattr(c, "received", None) for c in trainer.callbacks):
            time.sleep(0.1)


def write_tree(root: Path, classes: list[int], per_class: dict[str, int] | None = None) -> Path:
    """train/ and val/ with PER_CLASS digits of each class (8x8 grey PNGs), distinct images in each split."""
    images, labels = load_digits()
    for c in classes:
        rows = np.flatnonzero(labels == c)
        start = 0
        for split, n in (per_class or PER_CLASS).items():
            (root / split / str(c)).mkdir(parents=True)
            for i in rows[start : start + n]:
                Image.fromarray(images[i], mode="L").save(root / split / str(c) / f"{i:04d}.png")
            start += n
    return root


def free_port() -> int:
    """A TCP port nobody listens on now: a fixed port collides with another test run on the same host."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def communicate_all(processes: list[subprocess.Popen], timeout: float) -> list[str]:
    """Every process's output; on a timeout all of them are killed (no orphan keeps a port or a lock) and the
    assertion shows what each printed."""
    try:
        return [process.communicate(timeout=timeout)[0] for process in processes]
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        tails = [process.communicate()[0][-2000:] for process in processes]
        raise AssertionError(f"timed out after {timeout} s; outputs:\n" + "\n-----\n".join(tails)) from None


def train_args(data: Path, run_dir: Path, epochs: int = EPOCHS) -> list[str]:
    return ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={data}", f"--trainer.default_root_dir={run_dir}",
            "--data.batch_size=20", "--data.num_workers=0", f"--trainer.max_epochs={epochs}",
            "--trainer.num_sanity_val_steps=0", "--trainer.enable_progress_bar=false"]


def state(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=False)


def train_recipe(tmp_path: Path, data: Path, epochs: int = 60) -> Path:
    args = [f"--data.data_dir={data}", "--data.num_workers=0", "--data.batch_size=20",
            "--trainer.num_sanity_val_steps=0", "--trainer.enable_progress_bar=false", f"--trainer.max_epochs={epochs}"]
    recipe = tmp_path / "chain.yaml"
    recipe.write_text(f"run_root: {tmp_path / 'runs'}\nstages:\n"
                      f"  - name: a\n    command: train\n    config: {QUICKSTART_A}\n    args: {json.dumps(args)}\n")
    return recipe


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def start_chain(recipe: Path, wait_for: Path) -> tuple[subprocess.Popen, int]:
    """The runner, started in its own session, once its stage has written `wait_for`; and the stage's pid."""
    proc = subprocess.Popen([sys.executable, "-m", "deepconv_cli", "recipe", "run", str(recipe)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 400
    while not wait_for.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    stage = children(proc.pid)
    assert len(stage) == 1
    return proc, stage[0]
