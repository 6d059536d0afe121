"""Test helpers shared by several test files: small digit trees and a callback that signals the process."""

import os
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import Callback
from PIL import Image

from deepconv_cli.data.digits import load_digits

PER_CLASS = {"train": 24, "val": 8}


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
