"""Data-parallel training on CPU (gloo, 2 processes) is the single-process optimisation, and evaluation over
several processes counts every image exactly once."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import QUICKSTART_A, free_port

from deepconv_cli.__main__ import main as deepconv
from deepconv_cli.data.distributed import UnpaddedDistributedSampler, gather_by_index
from deepconv_cli.data.folder import ImageTree
from deepconv_cli.data.transforms import val_transform
from deepconv_cli.models.checkpoint import load_model, read_checkpoint

BATCH = 20  # the whole training set: one optimisation step sees every image whatever the split


@pytest.fixture(scope="module")
def one_batch_tree(digits_dir, tmp_path_factory) -> Path:
    """train/: 2 digits per class (20 = one batch); val/: 15 digits, an odd number for 2 processes."""
    root = tmp_path_factory.mktemp("one_batch")
    for split, per_class in (("train", lambda c: 2), ("val", lambda c: 2 if c < 5 else 1)):
        for c in range(10):
            for f in sorted((digits_dir / split / str(c)).glob("*.png"))[: per_class(c)]:
                (root / split / str(c)).mkdir(parents=True, exist_ok=True)
                shutil.copy(f, root / split / str(c) / f.name)
    return root


def one_step_args(data: Path, run_dir: Path) -> list[str]:
    """One SGD step on the whole set; S = crop = 32 on 8x8 digits, no flip/colour shift/dropout: deterministic."""
    return ["train", "-c", str(QUICKSTART_A), f"--data.data_dir={data}", f"--trainer.default_root_dir={run_dir}",
            "--data.s_min=32", "--data.s_max=32", "--data.flip=false", "--data.pca_std=0", "--model.dropout=0",
            f"--data.batch_size={BATCH}", "--data.num_workers=0", "--trainer.max_steps=1",
            "--trainer.num_sanity_val_steps=0", "--trainer.enable_progress_bar=false", "--resume=false"]


def last_row_with(metrics: Path, key: str) -> dict:
    rows = [r for r in csv.DictReader(metrics.open()) if r.get(key)]
    return rows[-1]


@pytest.mark.slow
def test_ddp_step_equals_single_process_step_and_validates_each_image_once(one_batch_tree, tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert deepconv(one_step_args(one_batch_tree, single)) == 0
    # 2 processes x 2 accumulated micro-batches of 5 = the same batch of 20, launched the way a user launches it
    cmd = [sys.executable, "-m", "deepconv_cli", *one_step_args(one_batch_tree, ddp), "--trainer.strategy=ddp",
           "--trainer.devices=2", "--trainer.accelerator=cpu", "--data.micro_batch_size=5"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    run = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "batch 20 = 2 device(s) x 5 images x 2 accumulation step(s)" in run.stdout

    a, b = read_checkpoint(single / "last.ckpt"), read_checkpoint(ddp / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 1
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, weight in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], weight, rtol=1e-5, atol=1e-6, msg=name)

    # validation over 2 processes: 15 images counted once each (8 + 7), the same error as one process
    val_single = last_row_with(single / "metrics.csv", "val/top1_error")
    val_ddp = last_row_with(ddp / "metrics.csv", "val/top1_error")
    assert float(val_single["val/images"]) == float(val_ddp["val/images"]) == 15
    for key in ("val/top1_error", "val/top5_error", "val/loss"):
        assert float(val_ddp[key]) == pytest.approx(float(val_single[key]), abs=1e-4), key

    # the DDP checkpoint loads on its own and reproduces the error it logged, image by image
    model, meta = load_model(ddp / "best.ckpt")
    tree = ImageTree(one_batch_tree / "val", val_transform(32, meta.crop_size))
    x = torch.stack([tree[i][0] for i in range(len(tree))]).float()
    y = torch.tensor(tree.targets)
    with torch.no_grad():
        error = 100.0 * (model(x).argmax(1) != y).float().mean().item()
    assert error == pytest.approx(float(val_ddp["val/top1_error"]), abs=1e-4)


def _shard_and_gather(rank: int, world: int, port: int, size: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        sampler = UnpaddedDistributedSampler(range(size), world, rank)
        mine = torch.tensor(list(sampler))
        gathered = gather_by_index(mine, (mine.float() * 10).unsqueeze(1), size)
        padded = torch.tensor(list(torch.utils.data.DistributedSampler(range(size), world, rank, shuffle=False)))
        deduped = gather_by_index(padded, (padded.float() * 10).unsqueeze(1), size)
        results[rank] = (mine.tolist(), gathered.squeeze(1).tolist(), deduped.squeeze(1).tolist())
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_unpadded_sampler_and_gather_count_every_image_once():
    size, world = 7, 2
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_shard_and_gather, args=(world, free_port(), size, results), nprocs=world, join=True)
        results = dict(results)
    shards = [results[r][0] for r in range(world)]
    assert sorted(shards[0] + shards[1]) == list(range(size))  # 4 + 3 images, none twice, none padded
    for rank in range(world):
        assert results[rank][1] == [10.0 * i for i in range(size)]  # dataset order on every rank
        assert results[rank][2] == [10.0 * i for i in range(size)]  # padded duplicates counted once
