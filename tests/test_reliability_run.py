"""Training-side reliability: data numbers validated in the typed signature, a full disk mid-checkpoint keeps the
last good checkpoint with one line, stale temporary files are cleaned, every artefact write is fsynced, foreign
files are never met with advice to unpickle them, built-in datasets get ordinary permissions."""

import errno
import os
import pickle
from pathlib import Path

import pytest
import torch
from helpers import QUICKSTART_A, digits_subset

from deepconv_cli import files
from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.files import staged_file, write_text_atomically
from deepconv_cli.training.faults import AtomicCheckpointIO, resume_checkpoint


@pytest.fixture(scope="module")
def small_tree(digits_dir, tmp_path_factory) -> Path:
    return digits_subset(digits_dir, tmp_path_factory.mktemp("small"), 6, 3)


def train_args(data: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={data}", f"--trainer.default_root_dir={run_dir}",
            "--data.batch_size=20", "--data.num_workers=0", "--trainer.max_epochs=3",
            "--trainer.num_sanity_val_steps=0", "--trainer.enable_progress_bar=false", *extra]


def error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if line.strip()]


@pytest.mark.parametrize("option", ["--data.batch_size=0", "--data.batch_size=-4", "--data.num_workers=-1",
                                    "--data.micro_batch_size=0", "--data.s_min=0"])
def test_bad_data_numbers_are_one_line_and_exit_2(small_tree, tmp_path, capsys, option):
    assert deepconv(train_args(small_tree, tmp_path / "run", option)) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and option.split("=")[0].removeprefix("--") in err[0]
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_a_batch_larger_than_the_training_set_is_refused_before_training(small_tree, tmp_path, capsys):
    assert deepconv(train_args(small_tree, tmp_path / "run", "--data.batch_size=5000")) == 2
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "data.batch_size 5000 is larger than the 60 training images" in err[0]
    assert not (tmp_path / "run" / "last.ckpt").exists()


def test_help_shows_the_ranges(capsys):
    assert deepconv(["train", "--help"]) == 0  # deepconv's own fast help: each option with its typed range
    text = " ".join(capsys.readouterr().out.split())
    assert "--data.batch_size PositiveInt" in text and "--data.num_workers NonNegativeInt" in text


class FullDiskIO(AtomicCheckpointIO):
    """A checkpoint writer on a file system that fills up: from the `fail_from`-th save on, half the checkpoint
    is written and then the write fails with ENOSPC, as a real full disk does."""

    def __init__(self, fail_from: int = 3) -> None:
        super().__init__()
        self.fail_from, self.saves = fail_from, 0

    def write(self, checkpoint, file) -> None:
        self.saves += 1
        if self.saves < self.fail_from:
            return super().write(checkpoint, file)
        file.write(b"\0" * 4096)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_mid_checkpoint_keeps_the_last_good_one_and_exits_1(small_tree, tmp_path, capsys):
    run_dir = tmp_path / "run"
    plugin = '--trainer.plugins={"class_path": "test_reliability_run.FullDiskIO", "init_args": {"fail_from": 3}}'
    assert deepconv(train_args(small_tree, run_dir, plugin)) == 1  # epoch 0 saves best + last; epoch 1 fails
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1, err
    assert "disk full" in err[0] and str(run_dir) in err[0] and "free" in err[0] and "needs about" in err[0]
    last = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 0  # the good checkpoint of epoch 0, whole
    assert not list(run_dir.glob(".*.tmp"))
    assert deepconv(train_args(small_tree, run_dir)) == 0  # space again: the same command resumes and finishes
    assert "resuming from" in capsys.readouterr().out


def test_stale_temporary_files_are_removed_at_start(tmp_path):
    dead = 4_000_000  # above Linux's pid_max: no such process
    stale = tmp_path / f".last.ckpt.{dead}.tmp"  # what 0.1.0 left after a kill during a write
    stale_new = tmp_path / f".best.ckpt.{dead}.abc123.tmp"
    live = tmp_path / f".last.ckpt.{os.getpid()}.xyz.tmp"  # a write in progress in this process
    for path in (stale, stale_new, live):
        path.write_bytes(b"")
    assert resume_checkpoint(tmp_path) is None
    assert not stale.exists() and not stale_new.exists() and live.exists()
    stale.write_bytes(b"")
    AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "last.ckpt")
    assert not stale.exists() and (tmp_path / "last.ckpt").is_file()


def test_every_artefact_write_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    write_text_atomically(tmp_path / "a.json", "{}")
    assert any(".a.json." in s for s in synced) and str(tmp_path) in synced  # the file, then the folder
    synced.clear()
    AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "last.ckpt")
    assert any(".last.ckpt." in s for s in synced) and str(tmp_path) in synced
    with pytest.raises(RuntimeError), staged_file(tmp_path / "b.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "last.ckpt"]


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # a foreign TorchScript file, made here
@pytest.mark.parametrize("kind", ["onnx", "pickle", "torchscript"])
def test_foreign_files_as_checkpoints_never_suggest_unsafe_loading(tmp_path, capsys, kind):
    if kind == "onnx":
        path = tmp_path / "model.onnx"
        path.write_bytes(b"\x08\x07\x12\x07pytorch\x1a\x032.1" + b"\0" * 64)
        expected = "is an ONNX export, not a deepconv checkpoint"
    elif kind == "pickle":
        path = tmp_path / "evil.ckpt"
        path.write_bytes(pickle.dumps(Evil()))
        expected = "unsafe"
    else:
        path = tmp_path / "model.pt"
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))
        expected = "is a TorchScript export"
    (tmp_path / "val" / "a").mkdir(parents=True)
    assert deepconv(["evaluate", "--ckpt", str(path), "--data", str(tmp_path / "val")]) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and expected in err[0] and str(path) in err[0]
    assert "weights_only" not in err[0] and "pwned" not in err[0]


def test_built_in_dataset_folders_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        assert deepconv(["data", "digits", str(tmp_path / "digits")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "digits").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "digits" / "train").stat().st_mode & 0o777 == 0o755
