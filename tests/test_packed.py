"""Packed data (`deepconv data pack`, data/packed.py): the pack holds the files, training and evaluation read it
exactly as they read the folder, and the training loader's position survives a restart."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import QUICKSTART_A

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data.datamodule import ImageFolderData
from deepconv_cli.data.packed import PackedSplit, read_meta

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_tree(digits_dir, tmp_path_factory) -> Path:
    """10 classes x (8 train + 4 val) digits, plus one truncated PNG in train/3."""
    root = tmp_path_factory.mktemp("small")
    for split, n in (("train", 8), ("val", 4)):
        for folder in sorted(p for p in (digits_dir / split).iterdir() if p.is_dir()):  # not the stats caches
            (root / split / folder.name).mkdir(parents=True)
            for f in sorted(folder.iterdir())[:n]:
                shutil.copy(f, root / split / folder.name / f.name)
    good = next((root / "train" / "3").iterdir()).read_bytes()
    (root / "train" / "3" / "zz_bad.png").write_bytes(good[: len(good) // 2])
    return root


@pytest.fixture(scope="module")
def packed_dir(small_tree, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "small-packed"
    assert deepconv(["data", "pack", str(small_tree), str(out), "--workers", "1"]) == 0
    return out


def test_pack_keeps_files_labels_and_bad_verdicts(small_tree, packed_dir, capsys, tmp_path):
    meta = read_meta(packed_dir)
    assert meta["bad"] == {"train/3/zz_bad.png": meta["bad"]["train/3/zz_bad.png"]}
    for split, count in (("train", 80), ("val", 40)):
        data = PackedSplit(packed_dir, split, meta)
        assert len(data) == count
        for i, (name, label) in enumerate(data.samples):
            data.open_lazily(i)
            assert data.items.item(i)["image"] == (small_tree / split / name).read_bytes()
            assert data.items.item(i)["label"] == label == int(Path(name).parent.name)
    # bad input: one line, exit 2, nothing written
    assert deepconv(["data", "pack", str(small_tree), str(packed_dir)]) == 2
    assert deepconv(["data", "pack", str(tmp_path / "absent"), str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
    assert "already exists" in capsys.readouterr().err


def test_packed_training_data_match_the_folder(small_tree, packed_dir, capsys):
    """The same image and seed give the same crop; the statistics are the folder's; every val image once."""
    kwargs = dict(s_min=12, s_max=16, crop_size=8, batch_size=4, num_workers=0, stats_max_images=50)
    folder = ImageFolderData(str(small_tree), skip_bad_images=True, **kwargs)
    packed = ImageFolderData(str(packed_dir), **kwargs)
    (f_train, f_val), (p_train, p_val) = folder._build(), packed._build()
    assert packed.classes == folder.classes
    for key in ("mean", "pca_eigval"):
        assert packed.stats[key] == pytest.approx(folder.stats[key], rel=1e-9)
    names = [str(Path(p).relative_to(small_tree / "train")) for p, _ in f_train.samples]
    assert sorted(names) == sorted(name for name, _ in p_train.samples)
    packed_index = {name: i for i, (name, _) in enumerate(p_train.samples)}
    for i in (0, 17, 79):
        crops = []
        for data, j in ((f_train, i), (p_train, packed_index[names[i]])):
            random.seed(i), torch.manual_seed(i)
            crops.append(data[j])
        assert crops[0][1] == crops[1][1] and torch.equal(crops[0][0], crops[1][0])
    assert len(p_val) == len(f_val) == 40
    capsys.readouterr()
    assert deepconv(["stats", str(packed_dir), "--max_images", "50"]) == 0  # `deepconv stats` reads packs too
    printed = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert " ".join(f"{v:.2f}" for v in folder.stats["mean"]) in printed


def test_packed_shards_of_two_nodes_are_disjoint_and_complete(packed_dir, monkeypatch):
    """Rank 0 and rank 1 of two GPU nodes (one process each; litdata counts nodes from the CUDA devices, so the
    two-node torchrun test on CPU runs as one node) read disjoint shards whose union is the training set in every
    epoch, not only the first; with drop_last the shards have equal lengths (no rank waits in a collective)."""
    from litdata.utilities.env import _DistributedEnv

    from deepconv_cli.data.packed import packed_train_set

    def shard(rank: int, world: int, drop_last: bool, epoch: int = 1) -> list[tuple[bytes, int]]:
        # what litdata reads from torch.distributed on node `rank` of `world` nodes of one process each
        monkeypatch.setattr(_DistributedEnv, "detect", classmethod(lambda cls: cls(world, rank, num_nodes=world)))
        data = packed_train_set(packed_dir, lambda image: image.convert("L").tobytes(), seed=3, drop_last=drop_last)
        data.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=0)
        return [(image, int(label)) for image, label in loader]

    whole = shard(0, 1, drop_last=False)
    assert len(whole) == 80  # 8 per class (the bad file was left out of the pack)
    for epoch in (1, 2, 3):
        ranks = [shard(rank, 2, drop_last=False, epoch=epoch) for rank in (0, 1)]
        assert sorted(ranks[0] + ranks[1]) == sorted(whole), epoch
        assert not set(ranks[0]) & set(ranks[1])
        even = [shard(rank, 2, drop_last=True, epoch=epoch) for rank in (0, 1)]
        assert len(even[0]) == len(even[1]) == 40 and not set(even[0]) & set(even[1])


def test_packed_statistics_in_two_processes_equal_one_and_the_folders(small_tree, packed_dir):
    """The statistics of a pack, decoded by a pool of 2 processes, equal one process's and the folder's bit for bit."""
    from deepconv_cli.data.packed import packed_stats
    from deepconv_cli.data.stats import compute_stats

    split = PackedSplit(packed_dir, "train", read_meta(packed_dir))
    one, two = (packed_stats(split, 60, workers, progress=False, parallel_min=0) for workers in (0, 2))
    files = [str(small_tree / "train" / name) for name, _ in split.samples]
    folder = compute_stats(files, 60, progress=False)
    for key in ("mean", "pca_eigval", "pca_eigvec", "pixels", "images"):
        assert one[key] == two[key] == folder[key], key


def test_packed_loader_resumes_mid_epoch(packed_dir):
    """StreamingDataLoader's state after k batches gives a fresh loader the batch the first would have drawn next,
    with 2 workers in this process (after the in-process pack, whose litdata left the spawn start method set: the
    dataset must pickle)."""
    dm = ImageFolderData(str(packed_dir), s_min=8, s_max=8, crop_size=8, batch_size=8, num_workers=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    seen = iter(loader)
    for _ in range(3):
        next(seen)
    state = loader.state_dict()
    expected = next(seen)
    resumed = dm.train_dataloader()
    resumed.load_state_dict(state)
    got = next(iter(resumed))
    assert torch.equal(got[1], expected[1]) and torch.equal(got[0], expected[0])


def test_evaluate_packed_equals_folder(trained_ckpt, small_tree, packed_dir, tmp_path):
    rows = []
    for data in (small_tree, packed_dir):
        out = tmp_path / f"{data.name}.json"
        assert deepconv(["evaluate", "--ckpt", str(trained_ckpt), "--data", str(data), "--num_workers", "0",
                         "--method", "center", "--json", str(out)]) == 0
        rows.append([{k: v for k, v in row.items() if "second" not in k and "time" not in k}
                     for row in json.loads(out.read_text())])
    assert rows[0] == rows[1] and rows[0][0]["top1_error"] < 50


def test_features_of_a_packed_split_equal_the_folders(trained_ckpt, small_tree, packed_dir, tmp_path):
    """`deepconv features --data PACK/val` gives the folder's descriptors, labels and classes, image for image."""
    from deepconv_cli.features.store import read_features

    feats = []
    for data in (small_tree / "val", packed_dir / "val"):
        out = tmp_path / f"{data.parent.name}.safetensors"
        assert deepconv(["features", "--ckpt", str(trained_ckpt), "--data", str(data), "--scales", "32",
                         "--num_workers", "0", "--out", str(out)]) == 0
        feats.append(read_features(out))
    folder, packed = feats
    assert len(folder.paths) == 40 and [p.removeprefix("val/") for p in packed.paths] == folder.paths
    assert torch.equal(packed.labels, folder.labels) and packed.classes == folder.classes
    assert torch.equal(packed.descriptors, folder.descriptors)


def _train_args(data: Path, run_dir: Path) -> list[str]:
    return ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={data}", f"--trainer.default_root_dir={run_dir}",
            "--data.batch_size=20", "--data.num_workers=0", "--trainer.max_epochs=3", "--last_every_n_steps=1",
            "--trainer.num_sanity_val_steps=0", "--trainer.enable_progress_bar=false"]


@pytest.mark.slow
def test_kill9_mid_epoch_then_rerun_resumes_mid_epoch_exactly(packed_dir, tmp_path, capsys):
    """80 packed images, batch 20: 4 steps an epoch. kill -9 at step 6 (epoch 1, batch 2), the same command again:
    it resumes at that step, and the weights after 3 epochs equal those of an uninterrupted run."""
    assert deepconv(_train_args(packed_dir, tmp_path / "whole")) == 0
    run_dir = tmp_path / "killed"
    kill = '--trainer.callbacks+={"class_path": "helpers.SignalAtStep", "init_args": {"step": 6, "signum": 9}}'
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    proc = subprocess.run([sys.executable, "-m", "deepconv_cli", *_train_args(packed_dir, run_dir), kill], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    killed = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=False)
    assert (killed["epoch"], killed["global_step"]) == (1, 6)  # mid-epoch: 2 of epoch 1's 4 steps done
    capsys.readouterr()
    assert deepconv(_train_args(packed_dir, run_dir)) == 0
    assert "resuming from" in capsys.readouterr().out
    a = torch.load(tmp_path / "whole" / "last.ckpt", map_location="cpu", weights_only=False)
    b = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=False)
    assert (b["epoch"], b["global_step"]) == (a["epoch"], a["global_step"]) == (2, 12)
    for name, weight in a["state_dict"].items():
        assert torch.equal(b["state_dict"][name], weight), name


@pytest.mark.slow
def test_two_torchrun_nodes_on_packed_data_equal_one_process(small_tree, tmp_path):
    """Two "nodes" (torchrun --nnodes 2 on localhost, CPU, gloo) each read their own shard of a packed set: one
    SGD step on the whole training set gives the single-process weights, so no image was lost or repeated; and
    the validation counts each image once."""
    from helpers import communicate_all, digits_subset, free_port

    tree = digits_subset(small_tree, tmp_path / "tree", 2, 2)  # 20 train images = one batch, 20 val
    pack = tmp_path / "packed"
    assert deepconv(["data", "pack", str(tree), str(pack), "--workers", "1"]) == 0
    args = ["--data.s_min=32", "--data.s_max=32", "--data.flip=false", "--data.pca_std=0", "--model.dropout=0",
            "--data.batch_size=20", "--trainer.max_steps=1", "--resume=false"]
    assert deepconv([*_train_args(pack, tmp_path / "single"), *args]) == 0
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)}
    port = free_port()
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", f"--node_rank={rank}",
         "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "deepconv_cli",
         *_train_args(pack, tmp_path / "nodes"), *args, "--trainer.num_nodes=2", "--trainer.devices=1",
         "--trainer.strategy=ddp", "--trainer.accelerator=cpu"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    outputs = communicate_all(nodes, timeout=300)
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "batch 20 = 2 device(s) x 10 images x 1 accumulation step(s)" in outputs[0]
    a = torch.load(tmp_path / "single" / "last.ckpt", map_location="cpu", weights_only=False)
    b = torch.load(tmp_path / "nodes" / "last.ckpt", map_location="cpu", weights_only=False)
    assert a["global_step"] == b["global_step"] == 1
    for name, weight in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], weight, rtol=1e-5, atol=1e-6, msg=name)
    rows = [line for line in (tmp_path / "nodes" / "metrics.csv").read_text().splitlines()]
    header = rows[0].split(",")
    images = [r.split(",")[header.index("val/images")] for r in rows[1:] if r.split(",")[header.index("val/images")]]
    assert float(images[-1]) == 20


def _one_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


def test_a_damaged_pack_is_one_line_naming_the_file(packed_dir, tmp_path, capsys):
    """A truncated or missing chunk, or a bad index.json: train, evaluate and features stop at once with one line
    naming the file (exit 1), before any training or evaluation."""
    lenet = ["train", "-c", str(REPO / "recipes" / "quickstart" / "lenet5.yaml"), f"--data.data_dir={packed_dir}",
             f"--trainer.default_root_dir={tmp_path / 'lenet'}", "--trainer.max_steps=1", "--data.num_workers=0",
             "--trainer.enable_progress_bar=false", "--trainer.num_sanity_val_steps=0"]
    assert deepconv(lenet) == 0
    trained_ckpt = tmp_path / "lenet" / "last.ckpt"
    import time

    index = json.loads((packed_dir / "train" / "index.json").read_text())
    chunk = index["chunks"][0]["filename"]
    damages = {"truncated": lambda p: (p / "train" / chunk).write_bytes((p / "train" / chunk).read_bytes()[:100]),
               "missing": lambda p: (p / "val" / chunk).unlink(),
               "index": lambda p: (p / "train" / "index.json").write_text('{"chunks": [')}
    for name, damage in damages.items():
        pack = tmp_path / name
        shutil.copytree(packed_dir, pack)
        damage(pack)
        capsys.readouterr()
        started = time.monotonic()
        assert deepconv(_train_args(pack, tmp_path / f"run-{name}")) == 1
        assert deepconv(["evaluate", "--ckpt", str(trained_ckpt), "--data", str(pack), "--num_workers", "0"]) == 1
        assert deepconv(["features", "--ckpt", str(trained_ckpt), "--data", str(pack / "val"), "--num_workers", "0",
                         "--out", str(tmp_path / "f.safetensors")]) == 1
        assert time.monotonic() - started < 60
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(errors) == 3 and all("damaged pack: " in line for line in errors), errors
        assert all(str(pack / ("val" if name == "missing" else "train")) in line for line in errors), errors
        assert not (tmp_path / f"run-{name}" / "last.ckpt").exists() and not (tmp_path / "f.safetensors").exists()


@pytest.mark.slow
def test_a_pack_resumed_after_its_source_changed_is_refused_then_restarted(small_tree, tmp_path, monkeypatch, capsys):
    """Interrupted after train/, the source loses images and the options change: the rerun is one line (exit 1),
    never a mix; --restart packs the new source from the beginning, every label matching its chunk."""
    import litdata

    src, out = tmp_path / "src", tmp_path / "out"
    shutil.copytree(small_tree, src)
    optimize = litdata.optimize

    def interrupted_at_val(fn, inputs, output_dir, **kwargs):
        if Path(output_dir).name == "val":
            raise KeyboardInterrupt
        return optimize(fn, inputs, output_dir=output_dir, **kwargs)

    monkeypatch.setattr(litdata, "optimize", interrupted_at_val)
    assert deepconv(["data", "pack", str(src), str(out), "--workers", "1", "--max_side", "6"]) == 130
    monkeypatch.setattr(litdata, "optimize", optimize)
    for f in sorted((src / "train" / "4").iterdir())[:5]:
        f.unlink()
    capsys.readouterr()
    args = ["data", "pack", str(src), str(out), "--workers", "1", "--max_side", "7"]
    assert deepconv(args) == 1
    assert "made from other source files or options" in _one_error(capsys.readouterr().err)
    assert not out.exists()
    assert deepconv([*args, "--restart"]) == 0
    meta = read_meta(out)
    assert meta["max_side"] == 7 and len(meta["splits"]["train"]["labels"]) == 75  # 80 - 5 deleted
    for split in ("train", "val"):
        data = PackedSplit(out, split, meta)
        assert [data.items.item(i)["label"] for i in range(len(data))] == data.targets
        assert all(min(data.open_rgb(i).size) <= 7 for i in range(len(data)))


@pytest.mark.slow
def test_pack_out_is_resolved_and_checked_before_any_work(small_tree, tmp_path, capsys, monkeypatch):
    """A symlink to an empty folder is packed into (through the link); `.`, a folder inside SRC, a place under a
    file are refused with one line (exit 2) before anything is written."""
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    assert deepconv(["data", "pack", str(small_tree), str(tmp_path / "link"), "--workers", "1"]) == 0
    assert len(read_meta(tmp_path / "link")["splits"]["val"]["labels"]) == 40 and (tmp_path / "link").is_symlink()
    (tmp_path / "file").write_text("x")
    monkeypatch.chdir(tmp_path / "target")
    for out, why in ((".", "is the current folder"), (str(small_tree / "train" / "packed"), "inside the source"),
                     (str(tmp_path / "file" / "packed"), "is not a folder")):
        capsys.readouterr()
        before = sorted(p.name for p in tmp_path.iterdir())
        assert deepconv(["data", "pack", str(small_tree), out, "--workers", "1"]) == 2
        assert why in _one_error(capsys.readouterr().err)
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (small_tree / "train" / "packed").exists()


@pytest.mark.slow
def test_two_packs_into_one_out_give_one_pack_and_one_refusal(small_tree, tmp_path, capsys):
    out = tmp_path / "pack"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([sys.executable, "-m", "deepconv_cli", "data", "pack", str(small_tree), str(out),
                              "--workers", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = tmp_path / ".pack.packing"
    deadline = time.monotonic() + 120
    while not staging.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.poll() is None, "the first pack finished before the second started"
    assert deepconv(["data", "pack", str(small_tree), str(out), "--workers", "1"]) == 1
    assert "another `deepconv data pack` is writing" in _one_error(capsys.readouterr().err)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    meta = read_meta(out)
    data = PackedSplit(out, "train", meta)
    assert len(data) == 80 and [data.items.item(i)["label"] for i in range(80)] == data.targets
